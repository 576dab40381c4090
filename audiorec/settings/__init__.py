"""params.yaml's schema: one class per section, in a module named like the section.

A class states each key's type, allowed values and meaning (its docstring under the field);
params.yaml holds the values, once. `audiorec.config.validate` checks every section against
its class before any stage runs; a model's constructor takes its validated section
(audiorec.models.KINDS names the class). docs/params.md is generated from these classes
(`python -m stages.params_doc`).

The modules import nothing heavier than pydantic, so that checking params.yaml stays a
second's work, and a stage depends only on the sections it reads (audiorec.workflow.closure).
"""

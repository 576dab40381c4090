"""Hand-written numeric kernels of the Shallow net and BERT4Rec, apart from the models.

Each computes what a line of plain torch would (a gathered dot product, a sum or mean of
rows by group, `F.normalize(F.relu(x))`, `F.cross_entropy` over `hidden @ classes.T`), written
by hand for speed or memory: fewer passes over the rows, no (batch x n x dim) gathered copy,
no (rows x classes) logits matrix. At Music4All's size the plain versions cost a large share
of a training step on the CPU (docs/scale.md). They hold no model logic, so `shallow.py`
and `bert4rec.py` read like their papers and call these where the paper writes the plain
formula. tests/test_kernels.py checks each one, values and gradients, against a
plain-autograd reference written independently in the test.

What stays in the models: which path scores a batch (`ShallowNet.candidate_scores` and its
WHOLE_TABLE_DRAWS / ALL_PAIRS_ROWS_PER_CANDIDATE rules), the hinge loss, confidence weights,
negative sampling and its positive-pair lookup (the Shallow net's training protocol), and
BERT4Rec's losses: `masked_softmax_loss` (which positions count, via IGNORE) and
`sampled_softmax_loss` (negatives and the logQ correction), which call in here.

Data flows one way: this module imports only torch (and the standard library), never a model.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

# F.normalize's floor on a norm, so that an all-zero row (every unit clipped by ReLU) stays zero.
NORM_EPS = 1e-12
CROSS_ENTROPY_BLOCK = 2**22  # logits computed at a time by ChunkedCrossEntropy: 16 MiB of float32
# Classes per logits product on the CPU: see class_blocked_logits.
CLASS_BLOCK = 512


class GatheredDot(torch.autograd.Function):
    """`scores[b, j] = anchors[b] . table[rows[b, j]]`, without the (batch, n, dim) tensor of
    gathered rows that indexing and a product would build forward and twice backward.

    Forward on the CPU is a sampled dense-dense product (`torch.sparse.sampled_addmm`: only
    the requested entries of `anchors @ table.T`); on a GPU, where memory is fast, a gather.
    Backward is two weighted sums of rows, which `embedding_bag` computes without a gathered
    copy: each anchor's gradient sums its candidates' rows, each table row's the anchors
    that drew it. `tests/test_kernels.py` checks values and both gradients against plain
    autograd; benchmarks/music4all_scale.py times a Shallow epoch at Music4All's shape.
    """

    @staticmethod
    def forward(ctx, anchors: torch.Tensor, table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(anchors, table, rows)
        return dot_by_gather(anchors, table, rows) if anchors.is_cuda else dot_by_sampled_product(anchors, table, rows)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        anchors, table, rows = ctx.saved_tensors
        grad = grad.contiguous()
        grad_anchors = grad_table = None
        if ctx.needs_input_grad[0]:
            grad_anchors = F.embedding_bag(rows, table, per_sample_weights=grad, mode="sum")
        if ctx.needs_input_grad[1]:
            # One bag per table row, holding the anchors that drew it.
            drawing_anchors = torch.arange(rows.numel(), device=rows.device) // rows.shape[1]
            grad_table = sum_rows_by_group(rows.reshape(-1), len(table), anchors, drawing_anchors, grad.reshape(-1))
        return grad_anchors, grad_table, None


def sum_rows_by_group(
    groups: torch.Tensor,
    n_groups: int,
    table: torch.Tensor,
    members: torch.Tensor,
    weights: torch.Tensor | None = None,
    mode: str = "sum",
) -> torch.Tensor:
    """(n_groups, dim): for each group g, the sum (or mean) over the i with groups[i] == g of
    weights[i] * table[members[i]], without a copy of the gathered rows (`embedding_bag` over
    the entries sorted by group; a stable sort, so a fixed summation order)."""
    # Sorted as the narrowest integers that hold the groups: torch sorts 16-bit keys 3x and
    # 32-bit ones 2x faster than 64-bit ones, to the same permutation (a stable sort has one).
    narrow = torch.int16 if n_groups <= 2**15 else torch.int32 if n_groups <= 2**31 else torch.int64
    order = torch.argsort(groups.to(narrow), stable=True)
    counts = torch.bincount(groups, minlength=n_groups)
    return F.embedding_bag(
        members[order],
        table,
        torch.cumsum(counts, 0) - counts,
        per_sample_weights=None if weights is None else weights[order],
        mode=mode,
    )


def dot_by_gather(anchors: torch.Tensor, table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    return (F.embedding(rows, table) * anchors[:, None]).sum(-1)


def dot_by_sampled_product(anchors: torch.Tensor, table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The entries (b, rows[b, j]) of `anchors @ table.T`, each one dot product, read in place."""
    batch, n = rows.shape
    row_starts = torch.arange(0, batch * n + 1, n, device=rows.device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        pattern = torch.sparse_csr_tensor(
            row_starts, rows.reshape(-1), anchors.new_zeros(batch * n), (batch, len(table)), check_invariants=False
        )
    return torch.sparse.sampled_addmm(pattern, anchors, table.T, beta=0.0).values().view(batch, n)


class NormalizedReLU(torch.autograd.Function):
    """`F.normalize(F.relu(x), dim=-1)` in two passes over the rows each way instead of
    autograd's five or six: at Music4All's 17,053 users it cost as much as the layer's matmuls.

    Both directions write in place where they can: a fresh (17,053 x 200) tensor costs the
    kernel's zeroing of its pages on every batch, about as much as the pass that fills it
    (together 4-5 ms of a 50 ms Music4All batch). Forward rectifies its input itself, unless
    that is a leaf that requires grad, which autograd forbids to overwrite; the layer's output
    it gets in the net is nobody else's. Backward allocates only the gradient it returns."""

    @staticmethod
    def forward(ctx, preactivations: torch.Tensor) -> torch.Tensor:
        if preactivations.is_leaf and preactivations.requires_grad:
            unit = torch.relu(preactivations)
        else:
            unit = torch.relu_(preactivations)
            ctx.mark_dirty(unit)
        # Divided, not multiplied by a reciprocal: a row with one positive unit stays exactly a unit vector.
        norms = torch.linalg.vector_norm(unit, dim=-1, keepdim=True).clamp_(min=NORM_EPS)
        unit.div_(norms)
        ctx.save_for_backward(unit, norms)
        return unit

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        unit, norms = ctx.saved_tensors
        # d(h/|h|) = (g - y (g . y)) / |h|, then ReLU's mask (a zero output is a clipped input).
        # The product and its row sums are linalg.vecdot's steps, so the same bits.
        tangent = torch.mul(grad, unit)
        radial = tangent.sum(-1, keepdim=True)
        torch.addcmul(grad, unit, radial, value=-1, out=tangent).div_(norms)
        return torch.ops.aten.threshold_backward.grad_input(tangent, unit, 0, grad_input=tangent)


class ChunkedCrossEntropy(torch.autograd.Function):
    """`F.cross_entropy(hidden @ class_vectors.T, targets)` (the mean over rows) a block of rows
    at a time, the gradients taken in the same pass: the (rows x classes) logits never exist
    whole. At Music4All's 56,000 classes they were 300 MB a batch, and log-softmax, its
    backward and zeroing their gradient took a quarter of a BERT4Rec step on the CPU.
    The matmuls are the ones autograd runs: the logits, then softmax minus one-hot times
    the class vectors (and, for a trained table, its transpose times the rows). Every block
    reuses two buffers: on a 2-core AMD EPYC virtual machine, where first touching a page is
    slow, a fresh 16 MiB tensor per block cost more than the block's product
    (benchmarks/softmax_loss.py times both ways).
    `tests/test_kernels.py` checks the loss and both gradients against F.cross_entropy."""

    @staticmethod
    def forward(
        ctx, hidden: torch.Tensor, class_vectors: torch.Tensor, targets: torch.Tensor, grad_enabled: bool
    ) -> torch.Tensor:
        wants_hidden, wants_classes = (grad_enabled and wanted for wanted in ctx.needs_input_grad[:2])
        grad_hidden = torch.empty_like(hidden) if wants_hidden else None
        grad_classes = torch.zeros_like(class_vectors) if wants_classes else None
        total = hidden.new_zeros(())
        # At least one row: no masked position gives an empty loop and a nan loss, as F.cross_entropy does.
        step = max(1, min(CROSS_ENTROPY_BLOCK // max(len(class_vectors), 1), len(hidden)))
        logits_buffer, shifted_buffer = (hidden.new_empty(step, len(class_vectors)) for _ in range(2))
        for start in range(0, len(hidden), step):
            rows, block_targets = hidden[start : start + step], targets[start : start + step]
            logits = class_blocked_logits(rows, class_vectors, out=logits_buffer[: len(rows)])
            log_normalisers = logsumexp_rows(logits, out=shifted_buffer[: len(rows)])
            total += (log_normalisers - logits.gather(1, block_targets[:, None]).squeeze(1)).sum()
            if wants_hidden or wants_classes:
                # d loss / d logits: softmax minus the one-hot target, per row.
                probabilities = logits.sub_(log_normalisers[:, None]).exp_()
                probabilities[torch.arange(len(rows), device=rows.device), block_targets] -= 1
                # The buffers exist exactly when their gradient is wanted (allocated above).
                if grad_hidden is not None:
                    torch.mm(probabilities, class_vectors, out=grad_hidden[start : start + step])
                if grad_classes is not None:
                    grad_classes.addmm_(probabilities.T, rows)
        ctx.gradients = (grad_hidden, grad_classes)
        ctx.n_rows = len(hidden)
        return total / len(hidden)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        scale = grad / ctx.n_rows
        grad_hidden, grad_classes = ctx.gradients
        return (
            None if grad_hidden is None else grad_hidden * scale,
            None if grad_classes is None else grad_classes * scale,
            None,
            None,
        )


def class_blocked_logits(rows: torch.Tensor, class_vectors: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """`rows @ class_vectors.T` into `out`, on the CPU CLASS_BLOCK classes (columns) at a time.

    With few rows and Music4All's 56,000 classes, MKL ran the one product at 40 GFLOP/s on
    a 2-core AMD EPYC virtual machine (whose 4096-square products reach 95-120), at every
    width from 200 to 4,800; 512 classes at a time, whose vectors stay in cache, ran at
    60-95 (benchmarks/softmax_loss.py measures both). Each logit is the same dot product
    either way, and the results were bit-identical.
    """
    if rows.is_cuda:
        return torch.mm(rows, class_vectors.T, out=out)
    for start in range(0, len(class_vectors), CLASS_BLOCK):
        stop = start + CLASS_BLOCK
        torch.mm(rows, class_vectors[start:stop].T, out=out[:, start:stop])
    return out


def logsumexp_rows(values: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """`torch.logsumexp(values, dim=1)`, by the same steps (so the same bits), with `out` as the
    scratch space for `exp(values - row max)` that torch.logsumexp allocates on every call."""
    maxes = values.amax(dim=1, keepdim=True)
    maxes.masked_fill_(maxes.abs() == float("inf"), 0.0)  # an infinite max would make inf - inf
    return torch.sub(values, maxes, out=out).exp_().sum(dim=1).log_().add_(maxes.squeeze(1))

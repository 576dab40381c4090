"""The hand-written kernels of audiorec.models.kernels against plain autograd: each one's values
and, for those autograd differentiates, its gradients, on small random tensors. The references
are written here, independently of the kernels (indexing, loops, F.normalize, F.cross_entropy)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from audiorec.models import kernels
from audiorec.models.kernels import (
    ChunkedCrossEntropy,
    GatheredDot,
    NormalizedReLU,
    class_blocked_logits,
    dot_by_gather,
    dot_by_sampled_product,
    logsumexp_rows,
    sum_rows_by_group,
)

# Rows repeat within a batch row and across rows, in no order; table rows 7 and 9 are never drawn.
ROWS = [[3, 3, 0], [8, 1, 3], [0, 0, 0], [2, 6, 5], [5, 2, 8], [1, 1, 4], [6, 4, 6]]


@pytest.mark.parametrize("dot", [dot_by_gather, dot_by_sampled_product], ids=["gather", "sampled-product"])
def test_both_ways_of_scoring_candidates_are_the_dot_products_in_numpy(dot):
    """Rows repeat within a batch row and across rows, in no order: each entry is its own dot product."""
    rng = np.random.default_rng(1)
    anchors, table = rng.normal(size=(7, 5)), rng.normal(size=(9, 5))
    rows = np.array([[3, 3, 0], [8, 1, 3], [0, 0, 0], [2, 7, 5], [5, 2, 8], [1, 1, 4], [6, 4, 6]])
    expected = np.einsum("bd,bnd->bn", anchors, table[rows])
    scores = dot(torch.tensor(anchors), torch.tensor(table), torch.tensor(rows))
    np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("dtype", "tolerance"), [(torch.float64, 1e-12), (torch.float32, 1e-5)], ids=["float64", "float32"]
)
@pytest.mark.parametrize("wanted", [(True, True), (True, False), (False, True)], ids=["both", "anchors", "table"])
def test_gathered_dot_has_the_gathered_products_values_and_gradients(dtype, tolerance, wanted):
    """GatheredDot against indexing and a product: the scores, the anchors' gradient (each sums
    its candidates' rows) and the table's (each row sums the anchors that drew it, a never
    drawn row zero), under an upstream gradient other than ones; only the wanted gradients."""
    generator = torch.Generator().manual_seed(0)
    anchors = torch.randn(7, 5, generator=generator, dtype=dtype)
    table = torch.randn(10, 5, generator=generator, dtype=dtype)
    rows = torch.tensor(ROWS)
    upstream = torch.randn(7, 3, generator=generator, dtype=dtype)
    results = []
    for score in (GatheredDot.apply, lambda a, t, r: (a[:, None, :] * t[r]).sum(-1)):
        a, t = anchors.clone().requires_grad_(wanted[0]), table.clone().requires_grad_(wanted[1])
        scores = score(a, t, rows)
        scores.backward(upstream)
        results.append((scores.detach(), a.grad, t.grad))
    (scores, grad_anchors, grad_table), expected = results
    torch.testing.assert_close(results[0], expected, rtol=tolerance, atol=tolerance)
    assert scores.dtype == dtype and (grad_anchors is None) != wanted[0] and (grad_table is None) != wanted[1]
    if wanted[1]:
        assert grad_table[[7, 9]].abs().sum() == 0 and grad_table[3].abs().sum() > 0


@pytest.mark.parametrize("n_groups", [6, 2**15 + 5], ids=["16-bit-keys", "32-bit-keys"])
def test_sum_rows_by_group_sums_and_averages_each_groups_rows_as_a_loop_does(n_groups):
    """Per group, the (weighted) sum or the mean of its members' table rows; a group with no
    member is a zero row either way. Groups past 2**15 sort as 32-bit keys."""
    generator = torch.Generator().manual_seed(1)
    table = torch.randn(8, 3, generator=generator, dtype=torch.float64)
    # Groups 1 and 4 (and every group past 5) have no member; members repeat.
    groups = torch.tensor([3, 0, 5, 3, 2, 0, 3, 5, n_groups - 1])
    members = torch.tensor([1, 7, 7, 0, 2, 2, 1, 4, 6])
    weights = torch.randn(len(groups), generator=generator, dtype=torch.float64)
    expected_sum, expected_weighted = (
        torch.zeros(n_groups, 3, dtype=torch.float64),
        torch.zeros(n_groups, 3, dtype=torch.float64),
    )
    counts = torch.zeros(n_groups, dtype=torch.float64)
    for group, member, weight in zip(groups.tolist(), members.tolist(), weights):
        expected_sum[group] += table[member]
        expected_weighted[group] += weight * table[member]
        counts[group] += 1
    expected_mean = expected_sum / counts.clamp(min=1)[:, None]
    torch.testing.assert_close(
        sum_rows_by_group(groups, n_groups, table, members), expected_sum, rtol=1e-12, atol=1e-15
    )
    torch.testing.assert_close(
        sum_rows_by_group(groups, n_groups, table, members, weights), expected_weighted, rtol=1e-12, atol=1e-15
    )
    mean = sum_rows_by_group(groups, n_groups, table, members, mode="mean")
    torch.testing.assert_close(mean, expected_mean, rtol=1e-12, atol=1e-15)
    assert mean[[1, 4]].abs().sum() == 0 and mean.shape == (n_groups, 3)


def test_sum_rows_by_group_has_index_adds_gradients_to_the_table_and_the_weights():
    generator = torch.Generator().manual_seed(2)
    table = torch.randn(8, 3, generator=generator, dtype=torch.float64)
    groups, members = torch.tensor([3, 0, 5, 3, 2, 0, 3, 5]), torch.tensor([1, 7, 7, 0, 2, 2, 1, 4])
    weights = torch.randn(len(groups), generator=generator, dtype=torch.float64)
    upstream = torch.randn(6, 3, generator=generator, dtype=torch.float64)

    def by_index_add(groups, n_groups, rows, members, weights):
        return torch.zeros(n_groups, rows.shape[1], dtype=rows.dtype).index_add(
            0, groups, weights[:, None] * rows[members]
        )

    results = []
    for group_sum in (sum_rows_by_group, by_index_add):
        rows, scales = table.clone().requires_grad_(), weights.clone().requires_grad_()
        sums = group_sum(groups, 6, rows, members, scales)
        sums.backward(upstream)
        results.append((sums.detach(), rows.grad, scales.grad))
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-15)


def test_normalized_relu_is_normalize_of_relu_with_its_gradient():
    rows = torch.tensor([[1.0, -2.0, 3.0], [-1.0, -1.0, -4.0], [0.0, 2.5, -1.0], [3.0, 4.0, 0.0]], dtype=torch.float64)
    upstream = torch.tensor(
        [[0.3, -1.0, 2.0], [1.0, 1.0, 1.0], [-0.5, 0.7, 0.2], [1.0, -2.0, 0.5]], dtype=torch.float64
    )
    results = []
    # On a leaf (left alone), on an intermediate as the net has (overwritten in place), and autograd's composition.
    for function in (
        NormalizedReLU.apply,
        lambda x: NormalizedReLU.apply(x * 1),
        lambda x: F.normalize(F.relu(x), dim=-1),
    ):
        inputs = rows.clone().requires_grad_()
        outputs = function(inputs)
        outputs.backward(upstream)
        results.append((outputs.detach(), inputs.grad))
        assert torch.equal(inputs.detach(), rows)
    torch.testing.assert_close(results[0], results[2], rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(results[1], results[2], rtol=1e-12, atol=1e-15)
    # [3, 4, 0] -> [.6, .8, 0] by hand; an all-clipped row stays zero; one positive unit is exactly a unit vector.
    assert results[0][0][3].tolist() == pytest.approx([0.6, 0.8, 0.0]) and results[0][0][1].tolist() == [0.0, 0.0, 0.0]
    assert results[0][0][2].tolist() == [0.0, 1.0, 0.0]


def test_normalized_relu_on_random_float32_rows_matches_normalize_of_relu():
    """Random float32 rows at the net's dtype, a few of them clipped whole, and a random upstream gradient."""
    generator = torch.Generator().manual_seed(3)
    rows = torch.randn(12, 7, generator=generator)
    rows[[2, 5]] = -rows[[2, 5]].abs()  # every unit clipped: zero output, zero gradient
    upstream = torch.randn(12, 7, generator=generator)
    results = []
    for function in (lambda x: NormalizedReLU.apply(x * 1), lambda x: F.normalize(F.relu(x), dim=-1)):
        inputs = rows.clone().requires_grad_()
        outputs = function(inputs)
        outputs.backward(upstream)
        results.append((outputs.detach(), inputs.grad))
    torch.testing.assert_close(results[0], results[1], rtol=1e-6, atol=1e-6)
    assert results[0][0][[2, 5]].abs().sum() == 0 and results[0][1][[2, 5]].abs().sum() == 0


@pytest.mark.parametrize(
    ("block", "class_block"), [(2**22, 512), (7, 4)], ids=["one-block", "blocks-of-a-few-rows-and-classes"]
)
@pytest.mark.parametrize("trained_classes", [False, True])
def test_the_blocked_cross_entropy_has_f_cross_entropys_loss_and_gradients(
    monkeypatch, block, class_block, trained_classes
):
    """ChunkedCrossEntropy against F.cross_entropy over the whole logits matrix: the loss, the
    gradient to the hidden rows and, for a trained table, to the class vectors; the same loss under no_grad.
    With blocks of 7 rows (of 23) and 4 classes (of 9), the last block of each is short."""
    monkeypatch.setattr(kernels, "CROSS_ENTROPY_BLOCK", block)
    monkeypatch.setattr(kernels, "CLASS_BLOCK", class_block)
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(23, 6, generator=generator, dtype=torch.float64)
    classes = torch.randn(9, 6, generator=generator, dtype=torch.float64)
    targets = torch.randint(9, (23,), generator=generator)
    results = []
    for loss_of in (
        lambda h, c: ChunkedCrossEntropy.apply(h, c, targets, True),
        lambda h, c: F.cross_entropy(h @ c.T, targets),
    ):
        rows, vectors = hidden.clone().requires_grad_(), classes.clone().requires_grad_(trained_classes)
        loss = loss_of(rows, vectors)
        (3 * loss).backward()  # an upstream gradient other than 1
        results.append((loss.detach(), rows.grad, vectors.grad))
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-14)
    assert (results[0][2] is None) == (not trained_classes)
    with torch.no_grad():  # as masked_softmax_loss calls it there: no gradient wanted
        loss = ChunkedCrossEntropy.apply(hidden, classes, targets, torch.is_grad_enabled())
        assert loss.item() == pytest.approx(results[1][0].item(), rel=1e-12)


def test_the_blocked_cross_entropy_gives_only_the_class_vectors_gradient_when_only_they_are_trained(monkeypatch):
    monkeypatch.setattr(kernels, "CROSS_ENTROPY_BLOCK", 20)  # blocks of 2 rows at 9 classes
    generator = torch.Generator().manual_seed(4)
    hidden = torch.randn(5, 4, generator=generator, dtype=torch.float64)
    classes = torch.randn(9, 4, generator=generator, dtype=torch.float64)
    targets = torch.tensor([8, 0, 0, 3, 8])
    results = []
    for loss_of in (
        lambda c: ChunkedCrossEntropy.apply(hidden, c, targets, True),
        lambda c: F.cross_entropy(hidden @ c.T, targets),
    ):
        vectors = classes.clone().requires_grad_()
        loss = loss_of(vectors)
        loss.backward()
        results.append((loss.detach(), vectors.grad))
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-14)


def test_the_blocked_cross_entropy_of_no_rows_is_nan_as_f_cross_entropys():
    classes = torch.randn(9, 6, generator=torch.Generator().manual_seed(0))
    no_rows, no_targets = torch.empty(0, 6), torch.empty(0, dtype=torch.int64)
    assert math.isnan(F.cross_entropy(no_rows @ classes.T, no_targets).item())
    assert math.isnan(ChunkedCrossEntropy.apply(no_rows, classes, no_targets, False).item())


@pytest.mark.parametrize("class_block", [512, 4, 3], ids=["one-block", "blocks-of-4", "blocks-of-3"])
def test_class_blocked_logits_is_the_product_with_the_class_vectors_written_into_out(monkeypatch, class_block):
    """Every logit of `rows @ class_vectors.T`, whole blocks and a short last one (9 classes),
    written into the buffer it was given."""
    monkeypatch.setattr(kernels, "CLASS_BLOCK", class_block)
    generator = torch.Generator().manual_seed(5)
    rows = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    class_vectors = torch.randn(9, 6, generator=generator, dtype=torch.float64)
    out = torch.full((4, 9), float("nan"), dtype=torch.float64)
    logits = class_blocked_logits(rows, class_vectors, out=out)
    assert logits.data_ptr() == out.data_ptr()
    torch.testing.assert_close(logits, rows @ class_vectors.T, rtol=1e-12, atol=1e-14)
    expected = np.einsum("rd,cd->rc", rows.numpy(), class_vectors.numpy())
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-14)


def test_logsumexp_rows_gives_torchs_logsumexp_bit_for_bit_with_infinite_and_empty_rows():
    values = torch.randn(5, 1000, generator=torch.Generator().manual_seed(0)) * 30
    values[1, 7] = float("inf")
    values[2] = float("-inf")  # a row with nothing: -inf, not nan
    values[3, :500] = float("-inf")
    assert torch.equal(logsumexp_rows(values, out=torch.empty_like(values)), torch.logsumexp(values, dim=1))


def test_logsumexp_rows_matches_a_log_of_summed_exponentials_in_float64():
    values = torch.randn(6, 11, generator=torch.Generator().manual_seed(6), dtype=torch.float64) * 5
    expected = torch.tensor([math.log(sum(math.exp(v) for v in row)) for row in values.tolist()], dtype=torch.float64)
    torch.testing.assert_close(logsumexp_rows(values, out=torch.empty_like(values)), expected, rtol=1e-12, atol=1e-14)

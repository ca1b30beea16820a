import numpy as np
import torch

from hashembed.train.encoders import DegreeEmbedding, HashingTrickEmbedding, QREmbedding


def test_hashing_trick_shares_rows_deterministically():
    enc = HashingTrickEmbedding(num_rows=7, dim=3, seed=1)
    ids = torch.arange(100)
    out = enc(ids)
    assert out.shape == (100, 3)
    rows = (enc.a * ids + enc.b) % 2_147_483_647 % 7
    torch.testing.assert_close(out, enc.table.weight[rows])
    assert len(torch.unique(rows)) == 7  # every row is used
    again = HashingTrickEmbedding(num_rows=7, dim=3, seed=1)
    assert (again.a, again.b) == (enc.a, enc.b)


def test_qr_gives_distinct_rows_as_products():
    enc = QREmbedding(num_nodes=10, num_rows=4, dim=2)
    assert enc.quotient.num_embeddings == 3
    ids = torch.arange(10)
    out = enc(ids)
    expected = enc.quotient.weight[ids // 4] * enc.remainder.weight[ids % 4]
    torch.testing.assert_close(out, expected)
    # no two nodes share both rows, so (with random init) every node's embedding differs
    assert torch.unique(out, dim=0).shape[0] == 10


def test_degree_buckets_are_log2():
    enc = DegreeEmbedding(np.array([0, 1, 2, 3, 7, 8]), dim=2)
    assert enc.bucket_of_node.tolist() == [0, 1, 1, 2, 3, 3]
    assert enc.bucket_of_node.dtype == torch.uint8
    torch.testing.assert_close(enc(torch.tensor([4])), enc.table.weight[3:4])

"""Stored test listeners: which rows are kept, and their listening order when there is one."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.model_extras import listener_arrays, stored_listener_split, stored_listeners


def test_listeners_keep_their_order_when_one_is_given() -> None:
    # row 0 listened to items 4, 1, 3 in that order (positions 1, 2, 3); row 1 is empty; row 2 binary
    x = sp.csr_matrix(np.array([[0, 2, 0, 3, 1], [0, 0, 0, 0, 0], [1, 0, 1, 0, 0]], dtype=np.float32))
    hold = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 1]], dtype=np.float32))
    arrays = listener_arrays(x, hold)
    listeners = stored_listeners(arrays)
    assert [c.tolist() for c in listeners] == [[4, 1, 3], [0, 2]]  # the empty row is skipped
    foldin, holdout = stored_listener_split(arrays, 5, ordered=True)
    assert foldin[0, 4] < foldin[0, 1] < foldin[0, 3]
    assert set(stored_listener_split(arrays, 5)[0].data) == {1.0}  # unordered: 0/1
    assert holdout.toarray().tolist() == [[1, 0, 0, 0, 0], [0, 0, 0, 0, 1]]


def test_binary_listeners_store_no_order() -> None:
    x = sp.csr_matrix(np.array([[0, 1, 1], [1, 0, 1]], dtype=np.float32))
    arrays = listener_arrays(x)
    assert "listeners.order" not in arrays
    assert [c.tolist() for c in stored_listeners(arrays)] == [[1, 2], [0, 2]]
    assert stored_listener_split(arrays, 3) is None  # no held-out items stored

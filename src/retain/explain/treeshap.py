"""Exact per-customer SHAP contributions for the LightGBM churn model (TreeSHAP, compiled).

:func:`shap_contributions` returns exactly what LightGBM's ``predict(X, pred_contrib=True)``
returns (path-dependent TreeSHAP: one column per feature plus the expected value; each row sums
to the raw log-odds score of the uncalibrated booster), only much faster.

LightGBM runs the TreeSHAP recursion, O(L D^2) per tree and row (L leaves, depth D). Here the
same values come from a per-leaf table. For a leaf with value v whose path splits on the
distinct features F (d of them), each feature j has a *cover ratio* r_j (the share of training
rows that follow the path's branches on j) and an *agreement* a_j (1 when the customer's value
follows all of the path's branches on j). The leaf's part of the tree's conditional expectation
is the product game ``v * prod_{j in S} a_j * prod_{j in F minus S} r_j``, whose Shapley value
for feature i in F is::

    phi_i = v * (a_i - r_i) * sum_{S subset of A minus i} c_|S| * prod_{j in F minus i minus S} r_j

with A the agreeing features and ``c_k = k! (d - 1 - k)! / d!``. It depends on the customer only
through the agreement mask (d bits), so every leaf gets a table of its 2^d possible contribution
vectors, built once per model. Scoring a row is then, per tree, one pass over the split
decisions and, per leaf, a mask and d table look-ups: O(L D) instead of O(L D^2), with no
recursion, compiled with numba and run in parallel over blocks of rows. Leaves whose table would
be too large (many distinct features on one path) compute the same sum directly per row.

Small trees go one step further. A tree's thresholds cut each of its features into intervals
(plus "missing" where a split sends missing values to a default branch, and "zero" where a split
treats zero as missing; otherwise LightGBM reads a missing value as 0); every row in the same
cell of that grid takes the same branches everywhere in the tree, so it has the same SHAP values.
For trees with a small grid the contributions of every cell are computed once (from the leaf
tables) and a row costs one threshold scan per split and a look-up.

:func:`shap_contributions` is tested against ``pred_contrib=True`` (tests/test_explain.py);
``method="lightgbm"`` uses LightGBM itself (the reference, and the fallback for categorical
splits or linear trees).

The module runs past ~600 lines because it is one engine: the flat array layout
(:class:`TreeShapTables`), the compiler that writes it and the numba kernels that read it must
agree field by field, and are read together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import lightgbm as lgb
import numba
import numpy as np

__all__ = ["TreeShapTables", "compile_tree_shap", "shap_and_raw_scores", "shap_contributions"]

_MISSING_NONE, _MISSING_ZERO, _MISSING_NAN = 0, 1, 2
_MISSING_CODES = {"None": _MISSING_NONE, "Zero": _MISSING_ZERO, "NaN": _MISSING_NAN}
_ZERO_THRESHOLD = 1e-35  # LightGBM's kZeroThreshold
_MAX_TABLE_FEATURES = 10  # leaves with more distinct path features are computed directly
_MAX_CELL_VALUES_PER_TREE = 1 << 18  # cells x features of one cached tree (2 MB)
_MAX_CELL_VALUES = 1 << 25  # all cell tables together (256 MB of float64)


@dataclass(frozen=True)
class TreeShapTables:
    """A LightGBM booster flattened into arrays, with the per-leaf SHAP tables.

    Built by :func:`compile_tree_shap`; consumed by :func:`shap_contributions`. All arrays are
    plain numpy, so the object can be reused across chunks of customers.
    """

    n_features: int
    expected_value: float
    node_offset: np.ndarray
    node_count: np.ndarray
    node_feature: np.ndarray
    node_threshold: np.ndarray
    node_default_left: np.ndarray
    node_missing: np.ndarray
    leaf_offset: np.ndarray
    leaf_count: np.ndarray
    leaf_value: np.ndarray
    leaf_dim: np.ndarray
    leaf_path_offset: np.ndarray
    leaf_path_len: np.ndarray
    leaf_feat_offset: np.ndarray
    leaf_table_offset: np.ndarray
    path_node: np.ndarray
    path_left: np.ndarray
    path_slot: np.ndarray
    slot_feature: np.ndarray
    slot_ratio: np.ndarray
    table: np.ndarray
    cell_offset: np.ndarray
    cell_feat_offset: np.ndarray
    cell_nfeat: np.ndarray
    cell_feature: np.ndarray
    cell_thr_offset: np.ndarray
    cell_nthr: np.ndarray
    cell_flags: np.ndarray
    cell_thr: np.ndarray
    cell_table: np.ndarray
    cell_leaf_offset: np.ndarray
    cell_leaf: np.ndarray

    def leaf_pack(self) -> tuple[np.ndarray, ...]:
        """The per-leaf arrays in the order the compiled kernels unpack them."""
        return tuple(getattr(self, name) for name in _LEAF_FIELDS)

    def cell_pack(self) -> tuple[np.ndarray, ...]:
        """The per-cell arrays in the order the compiled kernels unpack them."""
        return tuple(getattr(self, name) for name in _CELL_FIELDS)

    @property
    def max_nodes(self) -> int:
        """Largest number of internal nodes in one tree."""
        return int(self.node_count.max(initial=0))

    @property
    def max_dim(self) -> int:
        """Largest number of distinct features on one leaf's path."""
        return int(self.leaf_dim.max(initial=0))

    @property
    def n_cached_trees(self) -> int:
        """Trees served from the per-cell cache."""
        return int((self.cell_offset >= 0).sum())

    @property
    def table_bytes(self) -> int:
        """Memory held by the leaf and cell tables."""
        return int(self.table.nbytes + self.cell_table.nbytes)


class _Unsupported(ValueError):
    """The booster uses a split type the compiled path does not handle."""


def _flatten_tree(tree: dict[str, Any]) -> tuple[list, list]:
    """Internal nodes (by split_index) and leaves (with their path) of one dumped tree."""
    nodes: dict[int, tuple[int, float, bool, int]] = {}
    leaves: list[tuple[float, list[tuple[int, bool, int, float]]]] = []

    def count(node: dict[str, Any]) -> float:
        return float(node["leaf_count"] if "leaf_index" in node else node["internal_count"])

    stack: list[tuple[dict[str, Any], list[tuple[int, bool, int, float]]]] = [(tree, [])]
    while stack:
        node, path = stack.pop()
        if "split_index" not in node:
            if node.get("leaf_coeff"):
                raise _Unsupported("linear trees")
            leaves.append((float(node["leaf_value"]), path))
            continue
        if node.get("decision_type", "<=") != "<=":
            raise _Unsupported("categorical split")
        idx = int(node["split_index"])
        feat = int(node["split_feature"])
        nodes[idx] = (
            feat,
            float(node["threshold"]),
            bool(node["default_left"]),
            _MISSING_CODES[str(node["missing_type"])],
        )
        parent = count(node)
        for child, left in ((node["left_child"], True), (node["right_child"], False)):
            ratio = count(child) / parent if parent > 0 else 0.0
            stack.append((child, [*path, (idx, left, feat, ratio)]))
    ordered = [nodes[i] for i in range(len(nodes))]
    return ordered, leaves


@numba.njit(cache=True)
def _leaf_phi(value, ratio, mask, d, out):  # pragma: no cover - compiled
    """Shapley values of one leaf's product game for agreement ``mask`` (see module notes)."""
    poly = np.empty(d + 1)
    fact = np.empty(d + 1)
    fact[0] = 1.0
    for k in range(1, d + 1):
        fact[k] = fact[k - 1] * k
    for i in range(d):
        a_i = 1.0 if (mask >> i) & 1 else 0.0
        poly[:] = 0.0
        poly[0] = 1.0
        m = 0
        for j in range(d):
            if j == i:
                continue
            rj = ratio[j]
            if (mask >> j) & 1:
                m += 1
                for k in range(m, 0, -1):
                    poly[k] = poly[k] * rj + poly[k - 1]
                poly[0] = poly[0] * rj
            else:
                for k in range(m + 1):
                    poly[k] = poly[k] * rj
        total = 0.0
        for k in range(m + 1):
            total += fact[k] * fact[d - 1 - k] / fact[d] * poly[k]
        out[i] = value * (a_i - ratio[i]) * total


@numba.njit(cache=True)
def _fill_tables(
    leaf_value, leaf_dim, leaf_feat_offset, leaf_table_offset, slot_ratio, table
):  # pragma: no cover - compiled
    for leaf in range(len(leaf_value)):
        off = leaf_table_offset[leaf]
        if off < 0:
            continue
        d = leaf_dim[leaf]
        ratio = slot_ratio[leaf_feat_offset[leaf] : leaf_feat_offset[leaf] + d]
        for mask in range(1 << d):
            _leaf_phi(leaf_value[leaf], ratio, mask, d, table[off + mask * d : off + mask * d + d])


@numba.njit(cache=True, inline="always")
def _decide(fval, threshold, default_left, missing):  # pragma: no cover - compiled
    """LightGBM's numerical decision: True when the row goes to the left child."""
    if np.isnan(fval) and missing != 2:
        fval = 0.0
    if (missing == 1 and abs(fval) <= 1e-35) or (missing == 2 and np.isnan(fval)):
        return default_left
    return fval <= threshold


@numba.njit(cache=True, inline="always")
def _tree_add(x, t, lp, go_left, phi, out):  # pragma: no cover - compiled
    """Add tree ``t``'s SHAP values for row ``x`` to ``out``; the value of the leaf it reaches.

    The reached leaf is the one whose path agrees with every decision (a full mask).
    """
    (
        node_offset,
        node_count,
        node_feature,
        node_threshold,
        node_default_left,
        node_missing,
        leaf_offset,
        leaf_count,
        leaf_value,
        leaf_dim,
        leaf_path_offset,
        leaf_path_len,
        leaf_feat_offset,
        leaf_table_offset,
        path_node,
        path_left,
        path_slot,
        slot_feature,
        slot_ratio,
        table,
    ) = lp
    noff = node_offset[t]
    for k in range(node_count[t]):
        g = noff + k
        go_left[k] = _decide(
            x[node_feature[g]], node_threshold[g], node_default_left[g], node_missing[g]
        )
    loff = leaf_offset[t]
    reached = 0.0
    for leaf in range(loff, loff + leaf_count[t]):
        d = leaf_dim[leaf]
        if d == 0:  # a tree of one leaf
            reached = leaf_value[leaf]
            continue
        mask = (1 << d) - 1
        poff = leaf_path_offset[leaf]
        for p in range(poff, poff + leaf_path_len[leaf]):
            if go_left[path_node[p]] != path_left[p]:
                mask &= ~(1 << path_slot[p])
        if mask == (1 << d) - 1:
            reached = leaf_value[leaf]
        foff = leaf_feat_offset[leaf]
        toff = leaf_table_offset[leaf]
        if toff >= 0:
            base = toff + mask * d
            for s in range(d):
                out[slot_feature[foff + s]] += table[base + s]
        else:
            _leaf_phi(leaf_value[leaf], slot_ratio[foff : foff + d], mask, d, phi)
            for s in range(d):
                out[slot_feature[foff + s]] += phi[s]
    return reached


@numba.njit(cache=True, inline="always")
def _cell_code(x, t, cp):  # pragma: no cover - compiled
    """Index of the cell of tree ``t`` that row ``x`` falls in (mixed radix over its features)."""
    (
        cell_offset,
        cell_feat_offset,
        cell_nfeat,
        cell_feature,
        cell_thr_offset,
        cell_nthr,
        cell_flags,
        cell_thr,
        cell_table,
        cell_leaf_offset,
        cell_leaf,
    ) = cp
    foff = cell_feat_offset[t]
    code = 0
    for j in range(foff, foff + cell_nfeat[t]):
        k = cell_nthr[j]
        has_zero = cell_flags[j] & 1
        has_nan = (cell_flags[j] >> 1) & 1
        v = x[cell_feature[j]]
        c = -1
        if np.isnan(v):
            if has_nan:
                c = k + 1
            else:
                v = 0.0  # no split of this feature treats NaN as missing: LightGBM reads 0
        if c < 0:
            if has_zero and abs(v) <= 1e-35:
                c = k + 1 + has_nan
            else:
                c = 0
                toff = cell_thr_offset[j]
                while c < k and v > cell_thr[toff + c]:
                    c += 1
        code = code * (k + 1 + has_nan + has_zero) + c
    return code


@numba.njit(cache=True)
def _fill_cells(lp, cp, n_features, max_nodes, max_dim):  # pragma: no cover - compiled
    (
        cell_offset,
        cell_feat_offset,
        cell_nfeat,
        cell_feature,
        cell_thr_offset,
        cell_nthr,
        cell_flags,
        cell_thr,
        cell_table,
        cell_leaf_offset,
        cell_leaf,
    ) = cp
    go_left = np.empty(max(max_nodes, 1), dtype=np.bool_)
    phi = np.empty(max(max_dim, 1))
    x = np.full(n_features, np.nan)
    row = np.zeros(n_features)
    for t in range(len(cell_offset)):
        coff = cell_offset[t]
        if coff < 0:
            continue
        foff = cell_feat_offset[t]
        m = cell_nfeat[t]
        total = 1
        for j in range(foff, foff + m):
            total *= cell_nthr[j] + 1 + (cell_flags[j] & 1) + ((cell_flags[j] >> 1) & 1)
        for code in range(total):
            rem = code
            for j in range(foff + m - 1, foff - 1, -1):
                k = cell_nthr[j]
                has_nan = (cell_flags[j] >> 1) & 1
                radix = k + 1 + (cell_flags[j] & 1) + has_nan
                c = rem % radix
                rem //= radix
                if c < k:
                    v = cell_thr[cell_thr_offset[j] + c]
                elif c == k:
                    v = np.inf
                elif c == k + 1 and has_nan:
                    v = np.nan
                else:
                    v = 0.0
                x[cell_feature[j]] = v
            for j in range(foff, foff + m):
                row[cell_feature[j]] = 0.0
            cell_leaf[cell_leaf_offset[t] + code] = _tree_add(x, t, lp, go_left, phi, row)
            for j in range(m):
                cell_table[coff + code * m + j] = row[cell_feature[foff + j]]


@numba.njit(parallel=True, cache=True)
def _shap_kernel(X, out, raw, block, max_nodes, max_dim, lp, cp):  # pragma: no cover - compiled
    """SHAP values of every row into ``out``; its raw score (the reached leaves' values summed
    tree after tree from 0.0, as LightGBM's prediction adds them) into ``raw``."""
    (
        cell_offset,
        cell_feat_offset,
        cell_nfeat,
        cell_feature,
        cell_thr_offset,
        cell_nthr,
        cell_flags,
        cell_thr,
        cell_table,
        cell_leaf_offset,
        cell_leaf,
    ) = cp
    n = X.shape[0]
    n_blocks = (n + block - 1) // block
    for b in numba.prange(n_blocks):
        go_left = np.empty(max(max_nodes, 1), dtype=np.bool_)
        phi = np.empty(max(max_dim, 1))
        lo = b * block
        hi = min(n, lo + block)
        # tree-major within a block: one tree's tables stay in cache for all rows of the block
        for t in range(len(cell_offset)):
            coff = cell_offset[t]
            if coff >= 0:
                m = cell_nfeat[t]
                foff = cell_feat_offset[t]
                loff = cell_leaf_offset[t]
                for row in range(lo, hi):
                    code = _cell_code(X[row], t, cp)
                    base = coff + code * m
                    for j in range(m):
                        out[row, cell_feature[foff + j]] += cell_table[base + j]
                    raw[row] += cell_leaf[loff + code]
            else:
                for row in range(lo, hi):
                    raw[row] += _tree_add(X[row], t, lp, go_left, phi, out[row])


_LEAF_FIELDS = (
    "node_offset",
    "node_count",
    "node_feature",
    "node_threshold",
    "node_default_left",
    "node_missing",
    "leaf_offset",
    "leaf_count",
    "leaf_value",
    "leaf_dim",
    "leaf_path_offset",
    "leaf_path_len",
    "leaf_feat_offset",
    "leaf_table_offset",
    "path_node",
    "path_left",
    "path_slot",
    "slot_feature",
    "slot_ratio",
    "table",
)
_CELL_FIELDS = (
    "cell_offset",
    "cell_feat_offset",
    "cell_nfeat",
    "cell_feature",
    "cell_thr_offset",
    "cell_nthr",
    "cell_flags",
    "cell_thr",
    "cell_table",
    "cell_leaf_offset",
    "cell_leaf",
)


def _tree_cells(
    nodes: list[tuple[int, float, bool, int]],
) -> tuple[list[int], list[list[float]], list[int], int] | None:
    """Features, sorted thresholds, flags and cell count of one tree (None: not cacheable).

    Per feature the cells are the intervals between its thresholds, plus a "missing" cell when
    one of its splits sends NaN to a default branch (flag 2; otherwise LightGBM reads NaN as 0)
    and a "zero" cell when one treats zero as missing (flag 1).
    """
    by_feature: dict[int, set[float]] = {}
    flag: dict[int, int] = {}
    for feat, thr, _, miss in nodes:
        by_feature.setdefault(feat, set()).add(thr)
        bits = (miss == _MISSING_ZERO) * 1 + (miss == _MISSING_NAN) * 2
        flag[feat] = flag.get(feat, 0) | bits
    feats = sorted(by_feature)
    thresholds = [sorted(by_feature[f]) for f in feats]
    flags = [flag[f] for f in feats]
    cells = 1
    for thr, fl in zip(thresholds, flags, strict=True):
        if fl & 1 and any(abs(t) <= 1e-30 for t in thr):
            return None  # a representative value could be read as 'zero' (missing)
        cells *= len(thr) + 1 + (fl & 1) + (fl >> 1)
    if cells * len(feats) > _MAX_CELL_VALUES_PER_TREE:
        return None
    return feats, thresholds, flags, cells


_FLOAT_FIELDS = frozenset({"node_threshold", "leaf_value", "slot_ratio", "cell_thr"})
_BOOL_FIELDS = frozenset({"node_default_left", "path_left"})
_TABLE_FIELDS = frozenset({"table", "cell_table", "cell_leaf"})


class _TableBuilder:
    """The flat arrays of :class:`TreeShapTables` as lists, grown one dumped tree at a time.

    ``expected`` sums each leaf's value times the product of its cover ratios (the tree's
    expected value); ``table_size`` and ``cell_size`` are the lengths of the leaf and cell
    tables that :func:`_fill_tables` and :func:`_fill_cells` fill afterwards.
    """

    def __init__(self, cells: bool) -> None:
        self.cells = cells
        self.col: dict[str, list] = {
            name: [] for name in (*_LEAF_FIELDS, *_CELL_FIELDS) if name not in _TABLE_FIELDS
        }
        self.expected = 0.0
        self.table_size = 0
        self.cell_size = 0
        self.cell_leaves = 0

    def add_tree(
        self,
        nodes: list[tuple[int, float, bool, int]],
        leaves: list[tuple[float, list[tuple[int, bool, int, float]]]],
    ) -> None:
        """Append one tree (as :func:`_flatten_tree` returns it): nodes, leaves and cells."""
        c = self.col
        c["node_offset"].append(len(c["node_feature"]))
        c["node_count"].append(len(nodes))
        for feat, thr, defl, miss in nodes:
            c["node_feature"].append(feat)
            c["node_threshold"].append(thr)
            c["node_default_left"].append(defl)
            c["node_missing"].append(miss)
        c["leaf_offset"].append(len(c["leaf_value"]))
        c["leaf_count"].append(len(leaves))
        for value, path in leaves:
            self._add_leaf(value, path)
        self._add_cells(nodes)

    def _add_leaf(self, value: float, path: list[tuple[int, bool, int, float]]) -> None:
        """One leaf: its path, its distinct features (slots) with their cover ratios."""
        c = self.col
        slots: dict[int, int] = {}
        ratios: list[float] = []
        for _, _, feat, ratio in path:
            if feat not in slots:
                slots[feat] = len(slots)
                ratios.append(1.0)
            ratios[slots[feat]] *= ratio
        d = len(slots)
        self.expected += value * math.prod(ratios)
        c["leaf_value"].append(value)
        c["leaf_dim"].append(d)
        c["leaf_path_offset"].append(len(c["path_node"]))
        c["leaf_path_len"].append(len(path))
        for idx, left, feat, _ in path:
            c["path_node"].append(idx)
            c["path_left"].append(left)
            c["path_slot"].append(slots[feat])
        c["leaf_feat_offset"].append(len(c["slot_feature"]))
        c["slot_feature"].extend(slots)
        c["slot_ratio"].extend(ratios)
        if d <= _MAX_TABLE_FEATURES:
            c["leaf_table_offset"].append(self.table_size)
            self.table_size += (1 << d) * d
        else:
            c["leaf_table_offset"].append(-1)

    def _add_cells(self, nodes: list[tuple[int, float, bool, int]]) -> None:
        """The tree's cell grid when it is small enough to cache (else offset -1)."""
        c = self.col
        spec = _tree_cells(nodes) if self.cells and nodes else None
        c["cell_feat_offset"].append(len(c["cell_feature"]))
        if spec is None or self.cell_size + spec[3] * len(spec[0]) > _MAX_CELL_VALUES:
            c["cell_offset"].append(-1)
            c["cell_nfeat"].append(0)
            c["cell_leaf_offset"].append(-1)
            return
        feats, thresholds, flags, n_cells = spec
        c["cell_offset"].append(self.cell_size)
        self.cell_size += n_cells * len(feats)
        c["cell_leaf_offset"].append(self.cell_leaves)
        self.cell_leaves += n_cells
        c["cell_nfeat"].append(len(feats))
        for feat, thr, z in zip(feats, thresholds, flags, strict=True):
            c["cell_feature"].append(feat)
            c["cell_thr_offset"].append(len(c["cell_thr"]))
            c["cell_nthr"].append(len(thr))
            c["cell_flags"].append(z)
            c["cell_thr"].extend(thr)

    def arrays(self) -> dict[str, np.ndarray]:
        """The lists as typed arrays, and the (zeroed) leaf and cell tables."""
        out: dict[str, np.ndarray] = {}
        for name, values in self.col.items():
            dtype = (
                np.float64
                if name in _FLOAT_FIELDS
                else np.bool_
                if name in _BOOL_FIELDS
                else np.int64
            )
            out[name] = np.asarray(values, dtype=dtype)
        out["table"] = np.zeros(self.table_size, dtype=np.float64)
        out["cell_table"] = np.zeros(self.cell_size, dtype=np.float64)
        out["cell_leaf"] = np.zeros(self.cell_leaves, dtype=np.float64)
        return out


def compile_tree_shap(booster: lgb.Booster, *, cells: bool = True) -> TreeShapTables:
    """Flatten a LightGBM booster and build the per-leaf and per-cell SHAP tables.

    Parameters
    ----------
    booster : lightgbm.Booster
        A trained booster with numerical splits (binary or regression objective).
    cells : bool
        Also cache each small tree's contributions per cell of its feature-space partition
        (every row in a cell takes the same branches, so it has the same SHAP values):
        scoring a row then costs one threshold scan per split instead of a pass over the
        leaves. Trees whose cell table would be large keep the per-leaf path.

    Returns
    -------
    TreeShapTables
        Reusable arrays for :func:`shap_contributions`.

    Raises
    ------
    ValueError
        For categorical splits, linear trees or multi-class models (use ``method="lightgbm"``).
    """
    dump = booster.dump_model()
    if dump.get("num_class", 1) != 1 or dump.get("num_tree_per_iteration", 1) != 1:
        raise _Unsupported("multi-class model")
    n_features = int(dump["max_feature_idx"]) + 1
    builder = _TableBuilder(cells)
    for info in dump["tree_info"]:
        builder.add_tree(*_flatten_tree(info["tree_structure"]))
    arrays = builder.arrays()
    if len(arrays["leaf_value"]):
        _fill_tables(
            arrays["leaf_value"],
            arrays["leaf_dim"],
            arrays["leaf_feat_offset"],
            arrays["leaf_table_offset"],
            arrays["slot_ratio"],
            arrays["table"],
        )
    tables = TreeShapTables(n_features=n_features, expected_value=float(builder.expected), **arrays)
    if builder.cell_size:
        _fill_cells(
            tables.leaf_pack(), tables.cell_pack(), n_features, tables.max_nodes, tables.max_dim
        )
    return tables


def shap_contributions(
    booster: lgb.Booster,
    X: np.ndarray,
    *,
    method: Literal["tables", "lightgbm"] = "tables",
    tables: TreeShapTables | None = None,
    n_threads: int | None = None,
    block_rows: int = 4096,
) -> np.ndarray:
    """Exact SHAP contributions, equal to LightGBM's ``predict(X, pred_contrib=True)``.

    Parameters
    ----------
    booster : lightgbm.Booster
        The (uncalibrated) churn booster.
    X : ndarray, shape (n_rows, n_features)
        The model matrix (as built for prediction, e.g. float32 with NaN for missing).
    method : {"tables", "lightgbm"}
        ``tables``: the compiled tables (see the module notes); falls back to LightGBM for
        boosters it does not support. ``lightgbm``: LightGBM's own TreeSHAP.
    tables : TreeShapTables, optional
        Precompiled tables (:func:`compile_tree_shap`), to reuse across chunks.
    n_threads : int, optional
        Threads to use (default: all numba threads / LightGBM's default).
    block_rows : int
        Rows per parallel work item. Within a block the kernel runs tree after tree over the
        rows, so a tree's tables stay in the CPU cache for all of them: 4096 rows took 0.64x
        the time of 256 on a 327-tree model (bench/README.md); the values do not depend on it.

    Returns
    -------
    ndarray of float64, shape (n_rows, n_features + 1)
        Per-feature contributions in log-odds; the last column is the expected value. Each row
        sums to ``booster.predict(X, raw_score=True)``.
    """
    return shap_and_raw_scores(
        booster, X, method=method, tables=tables, n_threads=n_threads, block_rows=block_rows
    )[0]


def shap_and_raw_scores(
    booster: lgb.Booster,
    X: np.ndarray,
    *,
    method: Literal["tables", "lightgbm"] = "tables",
    tables: TreeShapTables | None = None,
    n_threads: int | None = None,
    block_rows: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`shap_contributions` and the raw scores of the same rows, in one pass.

    The compiled path knows the leaf each row reaches in each tree, so it adds the leaves'
    values tree after tree from 0.0, as LightGBM's prediction does: the raw scores are
    ``booster.predict(X, raw_score=True)`` to the last bit (tested), without a second walk
    through the trees. ``method="lightgbm"`` asks LightGBM for both.

    Parameters
    ----------
    booster, X, method, tables, n_threads, block_rows
        As for :func:`shap_contributions`.

    Returns
    -------
    contributions : ndarray of float64, shape (n_rows, n_features + 1)
        :func:`shap_contributions`.
    raw : ndarray of float64, shape (n_rows,)
        The raw scores (log-odds margins).
    """
    X = np.asarray(X)
    if method == "tables" and tables is None:
        try:
            tables = compile_tree_shap(booster)
        except _Unsupported:
            method = "lightgbm"
    if method == "lightgbm":
        kwargs = {} if n_threads is None else {"num_threads": n_threads}
        contrib = np.asarray(booster.predict(X, pred_contrib=True, **kwargs), dtype=np.float64)
        raw = np.asarray(booster.predict(X, raw_score=True, **kwargs), dtype=np.float64)
        return contrib, raw
    if tables is None:
        raise ValueError("the compiled path needs its tables")
    if X.ndim != 2 or X.shape[1] != tables.n_features:
        raise ValueError(f"X must have shape (n, {tables.n_features}); got {X.shape}")
    Xd = np.ascontiguousarray(X, dtype=np.float64)
    out = np.zeros((Xd.shape[0], tables.n_features + 1), dtype=np.float64)
    raw = np.zeros(Xd.shape[0], dtype=np.float64)
    previous = numba.get_num_threads()
    if n_threads is not None:
        numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        _shap_kernel(
            Xd,
            out,
            raw,
            int(block_rows),
            tables.max_nodes,
            tables.max_dim,
            tables.leaf_pack(),
            tables.cell_pack(),
        )
    finally:
        if n_threads is not None:
            numba.set_num_threads(previous)
    out[:, -1] = tables.expected_value
    return out, raw

"""Rank fusion and scope filters (pure)."""

from __future__ import annotations

import pytest

from oxydra.memory._retrieval import RRF_K, build_scope, fuse


class TestFuse:
    def test_first_in_both_lists_scores_one(self) -> None:
        fused = fuse([(1, 0.9), (2, 0.5)], [(1, 7.0)], vector_weight=0.7, fts_weight=0.3)
        assert fused[0].key == 1 and fused[0].score == pytest.approx(1.0)

    def test_a_single_weak_keyword_hit_is_not_a_perfect_score(self) -> None:
        fused = fuse([], [(5, 0.01)], vector_weight=0.7, fts_weight=0.3)
        assert fused[0].score == pytest.approx(0.3)

    def test_agreement_beats_a_slightly_higher_single_rank(self) -> None:
        vector = [(1, 0.80), (2, 0.79)]
        fused = fuse(vector, [(2, 3.0)], vector_weight=0.7, fts_weight=0.3)
        assert [f.key for f in fused] == [2, 1]

    def test_a_far_lower_vector_rank_is_not_lifted_above_the_vector_top(self) -> None:
        vector = [(key, 1.0 - key / 100) for key in range(1, 21)]
        fused = fuse(vector, [(15, 2.0)], vector_weight=0.7, fts_weight=0.3)
        assert fused[0].key == 1

    def test_raw_scores_are_kept_per_modality(self) -> None:
        fused = {f.key: f for f in fuse([(1, 0.5)], [(2, 4.0)], vector_weight=0.5, fts_weight=0.5)}
        assert fused[1].vector_score == 0.5 and fused[1].fts_score is None
        assert fused[2].fts_score == 4.0 and fused[2].vector_score is None

    def test_a_single_modality_search_normalises_to_its_own_weight(self) -> None:
        fused = fuse([(1, 0.2), (2, 0.1)], None, vector_weight=0.7, fts_weight=0.3)
        assert fused[0].score == pytest.approx(1.0)
        assert fused[1].score == pytest.approx((RRF_K + 1) / (RRF_K + 2))

    def test_no_positive_weight_is_an_error(self) -> None:
        with pytest.raises(ValueError):
            fuse([(1, 0.1)], None, vector_weight=0.0, fts_weight=1.0)

    def test_duplicate_keys_in_one_list_count_once(self) -> None:
        fused = fuse([(1, 0.9), (1, 0.8)], None, vector_weight=1.0, fts_weight=0.0)
        assert len(fused) == 1 and fused[0].score == pytest.approx(1.0)


class TestScope:
    def test_no_filter_is_unfiltered(self) -> None:
        scope = build_scope(user_id=None, session_ids=None, tags=())
        assert scope.unfiltered and scope.where == "1" and scope.params == ()

    def test_every_filter_is_a_bound_parameter(self) -> None:
        scope = build_scope(user_id="u'1", session_ids=["a", "b"], tags=["x", "y"])
        assert not scope.unfiltered
        assert scope.params == ("u'1", "a", "b", "x", "y")
        assert "u'1" not in scope.where and scope.where.count("?") == 5

import sparsebench
from sparsebench.store import Store


def test_random_search_keeps_best_scored_candidate_and_stores_all_scores(tmp_path, tiny_config):
    db = tmp_path / "s.db"
    trials = sparsebench.run(tiny_config, store=db, progress=False)
    candidates = sparsebench.api.load_candidates(db)
    rs = trials[(trials.method == "random-search") & (trials.role == "selected")]
    assert len(rs) == len(tiny_config.seeds) * len(tiny_config.sparsities)
    for _, trial in rs.iterrows():
        scored = candidates[(candidates.sparsity == trial.sparsity) & (candidates.seed == trial.seed)]
        assert len(scored) == tiny_config.candidates  # every candidate's score, not only the winner's
        assert scored.score.nunique() > 1
        best = scored.loc[scored.score.idxmin()]
        assert scored.chosen.sum() == 1 and best.chosen == 1
        assert trial.candidate == best.idx
        assert trial.init_score == __import__("pytest").approx(best.score, rel=1e-5)
        # the trained mask is the chosen candidate's mask
        with Store(db) as st:
            chosen_mask = st.con.execute(
                "SELECT mask FROM candidates WHERE sparsity=? AND seed=? AND chosen=1", (trial.sparsity, trial.seed)
            ).fetchone()[0]
        assert sparsebench.load_mask(db, int(trial.trial_id)).to_bytes() == chosen_mask


def test_accuracy_score_keeps_the_highest_accuracy(tmp_path, tiny_dict):
    db = tmp_path / "s.db"
    trials = sparsebench.run({**tiny_dict, "score": "accuracy", "methods": ["random-search"]}, store=db, progress=False)
    candidates = sparsebench.api.load_candidates(db)
    for _, trial in trials.iterrows():
        scored = candidates[(candidates.sparsity == trial.sparsity) & (candidates.seed == trial.seed)]
        assert scored.loc[scored.chosen == 1, "score"].item() == scored.score.max()
        assert scored.loc[scored.chosen == 1, "idx"].item() == scored[scored.score == scored.score.max()].idx.min()

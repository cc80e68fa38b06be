"""Tokenising review text for keyword search (BM25) and theme labels, in Chinese and English.

Chinese has no spaces, so Chinese runs are cut into words by ``jieba`` (loaded on first use, ~1 s) and English
runs are lower-cased words. Stop words are dropped so that BM25 and theme labels weigh the content words.
"""

from __future__ import annotations

import re
import threading

_CJK = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_RUNS = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]+|[a-z0-9]+(?:'[a-z]+)?")

EN_STOP = frozenset("""a about above after again against all am an and any are aren't as at be because been before
being below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during
each few for from further had hadn't has hasn't have haven't having he her here hers herself him himself his how i
i'd i'm i've if in into is isn't it it's its itself just let's me more most my myself no nor not of off on once only
or other ought our ours ourselves out over own same she should shouldn't so some such than that that's the their
theirs them themselves then there there's these they they'd they're this those through to too under until up very
was wasn't we we're were weren't what what's when where which while who whom why will with won't would wouldn't you
you'd you're your yours yourself also get got one would really much even still well just bit little way""".split())

ZH_STOP = frozenset("""的 了 是 我 也 都 就 在 和 有 很 不 还 这 那 个 一 你 他 她 它 们 我们 他们
就是 没有 还是 但是 可以 而且 因为 所以 如果 觉得 感觉 非常 比较 一个 这个 那个 什么
自己 已经 这样 还有 不是 一下 一些 然后 真的 东西 时候 里 吧 啊 呢 吗 哦 么 着 过
被 把 给 对 从 到 让 又 与 及 等 说 要 会 能 去 来 上 下 中 太 挺 才 再 更
最 好像 知道 这么 那么 之后 以后 一直 只是 不过 虽然 而 但 啦 呀 嗯""".split())

_jieba = None
_jieba_lock = threading.Lock()


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text or ""))


def _cut(run: str) -> list[str]:
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import logging

                import jieba

                jieba.setLogLevel(logging.WARNING)  # it logs its dictionary loading to stderr otherwise
                jieba.initialize()
                _jieba = jieba
    return _jieba.lcut(run)


def tokenize(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Words of ``text``: jieba words for Chinese runs, lower-case words for the rest, stop words removed."""
    out: list[str] = []
    for run in _RUNS.findall((text or "").lower()):
        if _CJK.match(run):
            words = [w for w in _cut(run) if w.strip()]
            out.extend(w for w in words if keep_stopwords or w not in ZH_STOP)
        elif keep_stopwords or (run not in EN_STOP and len(run) > 1):
            out.append(run)
    return out


_stemmer = None


def search_terms(words: list[str]) -> list[str]:
    """BM25 terms of :func:`tokenize`'s words: English words cut to their Snowball stem ("fits", "fitted" ->
    "fit"), Chinese words unchanged. Stems are for matching only; theme labels keep the words."""
    global _stemmer
    if _stemmer is None:
        import Stemmer  # PyStemmer, the Snowball stemmers in C

        _stemmer = Stemmer.Stemmer("english")
    return [w if _CJK.match(w) else _stemmer.stemWord(w) for w in words]


def hashed_ngrams(text: str, n_buckets: int) -> list[int]:
    """Bucket ids of the text's word unigrams and bigrams and, for Chinese, character 1- to 3-grams.

    Stop words are kept: "not", "no", "不", "没有" carry the sentiment. The hash is CRC32, stable across runs and
    machines, so a saved model reads the same buckets.
    """
    import zlib

    words = tokenize(text, keep_stopwords=True)
    grams = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
    for run in _RUNS.findall((text or "").lower()):
        if _CJK.match(run):
            # Character n-grams catch what the word segmenter splits differently ("不好用" vs "不 好用").
            grams += [run[i:i + n] for n in (1, 2, 3) for i in range(len(run) - n + 1)]
    return [zlib.crc32(g.encode()) % n_buckets for g in grams] or [0]

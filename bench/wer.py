"""Word error rate of a transcript against the script that was spoken.

Both sides are normalised alike: lower case, punctuation dropped (apostrophes inside words
kept), hyphens split. WER = (substitutions + deletions + insertions) / reference words.
"""
import re

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def words(text):
    return _WORD.findall(text.lower().replace("-", " "))


def counts(reference, hypothesis):
    """(substitutions, deletions, insertions, reference length) by edit distance on words."""
    ref, hyp = words(reference), words(hypothesis)
    # rows over the reference; each cell (cost, subs, dels, ins)
    prev = [(j, 0, 0, j) for j in range(len(hyp) + 1)]
    for i in range(1, len(ref) + 1):
        cur = [(i, 0, i, 0)]
        r = ref[i - 1]
        for j in range(1, len(hyp) + 1):
            d, s_, de, in_ = prev[j - 1]
            best = (d, s_, de, in_) if r == hyp[j - 1] else (d + 1, s_ + 1, de, in_)
            d, s_, de, in_ = prev[j]
            if d + 1 < best[0]:
                best = (d + 1, s_, de + 1, in_)
            d, s_, de, in_ = cur[j - 1]
            if d + 1 < best[0]:
                best = (d + 1, s_, de, in_ + 1)
            cur.append(best)
        prev = cur
    _, subs, dels, ins = prev[-1]
    return subs, dels, ins, len(ref)


def wer(reference, hypothesis):
    subs, dels, ins, n = counts(reference, hypothesis)
    return {"wer": (subs + dels + ins) / max(n, 1), "sub": subs, "del": dels, "ins": ins,
            "ref_words": n, "hyp_words": len(words(hypothesis))}

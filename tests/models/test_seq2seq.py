"""The Transformer sequence-to-sequence baseline."""

import dataclasses

import pytest
import torch

from diagrammar.models.seq2seq import EOS, Seq2SeqConfig, train_seq2seq

PAIRS = [("walk", "WALK"), ("walk twice", "WALK WALK"), ("run", "RUN"),
         ("run twice", "RUN RUN"), ("look", "LOOK")] * 8
CONFIG = Seq2SeqConfig(steps=250, dim=32, layers=1, batch=8, dropout=0.0, max_length=6)


def test_learns_its_training_pairs_and_is_seeded():
    model = train_seq2seq(PAIRS, CONFIG, progress=False)
    sources = ["walk", "walk twice", "run twice", "look"]
    assert model.translate(sources) == ["WALK", "WALK WALK", "RUN RUN", "LOOK"]
    again = train_seq2seq(PAIRS, CONFIG, progress=False)
    for a, b in zip(model.parameters(), again.parameters()):
        assert torch.equal(a, b)


def test_decoding_stops_at_max_length_and_unknown_words_pad():
    model = train_seq2seq(PAIRS, Seq2SeqConfig(steps=1, dim=16, layers=1, max_length=3),
                          progress=False)
    out = model.translate(["walk jump", "zzz"])
    assert len(out) == 2 and all(len(o.split()) <= 3 for o in out)
    assert model.source_vocabulary.encode("zzz") == [0]
    assert model.target_vocabulary.words[EOS] == "<eos>"


def test_checkpoints_every_few_steps_and_at_the_end():
    seen = []
    train_seq2seq(PAIRS, Seq2SeqConfig(steps=5, dim=16, layers=1), progress=False,
                  checkpoint=lambda step, model: seen.append((step, model.training)), every=2)
    assert seen == [(2, False), (4, False), (5, False)]


def test_pieces_tokens_round_trip_and_sampling_is_seeded():
    from diagrammar.models.seq2seq import detokenize, tokenize
    text = "SELECT COUNT(*) FROM w WHERE QA('map@won?', result) = 'yes' -- 61,512"
    assert detokenize(tokenize(text, "pieces"), "pieces") == text
    pairs = [("61,512", "61512"), ("1,234", "1234"), ("7", "7")] * 10
    config = Seq2SeqConfig(steps=30, dim=16, layers=1, tokens="pieces", max_length=8)
    model = train_seq2seq(pairs, config, progress=False)
    first = model.translate(["61,512"] * 4, temperature=1.0,
                            generator=torch.Generator().manual_seed(3))
    again = model.translate(["61,512"] * 4, temperature=1.0,
                            generator=torch.Generator().manual_seed(3))
    assert first == again and len(first) == 4


def test_too_long_inputs_are_refused():
    model = train_seq2seq(PAIRS, Seq2SeqConfig(steps=1, dim=16, layers=1, max_length=2),
                          progress=False)
    with pytest.raises(ValueError, match="longer than the 4 positions"):
        model.translate(["walk walk walk walk walk"])


def _copy_task():
    # "say X" -> X; the held-out names are read in training sources ("hi X") but never
    # written in a training target: only a model that copies can write them.
    names = [f"{a}{b}" for a in ("Ka", "Lo", "Mi", "Nu", "Po", "Ru") for b in
             ("bel", "dan", "fin", "gor", "hal", "jup")]
    held = names[::6]
    pairs = [(f"say {n}", n) for n in names if n not in held]
    pairs += [(f"hi {n}", "hello") for n in names]
    return pairs, held


def test_the_copy_mechanism_writes_words_no_target_had():
    pairs, held = _copy_task()
    config = Seq2SeqConfig(steps=400, dim=32, layers=1, batch=16, dropout=0.0, max_length=8,
                           tokens="spaced", learning_rate=3e-3)
    copying = train_seq2seq(pairs, dataclasses.replace(config, copy=True), progress=False)
    plain = train_seq2seq(pairs, config, progress=False)
    sources = [f"say {n}" for n in held]
    assert copying.target_vocabulary is copying.source_vocabulary
    assert sum(a == n for a, n in zip(copying.translate(sources), held)) >= len(held) - 1
    assert not any(a == n for a, n in zip(plain.translate(sources), held))


def test_copy_outputs_are_log_probabilities():
    pairs, _ = _copy_task()
    model = train_seq2seq(pairs, Seq2SeqConfig(steps=2, dim=16, layers=1, max_length=8,
                                               tokens="spaced", copy=True), progress=False)
    source = torch.tensor([model.source_vocabulary.encode("say Kabel")])
    target = torch.tensor([[1, *model.target_vocabulary.encode("Kabel")]])
    total = model(source, target).exp().sum(-1)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-4)


def test_length_buckets_group_similar_pairs_and_train_the_same_task():
    from diagrammar.models.seq2seq import _buckets
    encoded = [([1] * n, [2]) for n in (5, 1, 9, 2, 7, 3)]
    assert [[len(s) for s, _ in b] for b in _buckets(encoded, 4)] == [[1, 2, 3, 5], [7, 9]]
    model = train_seq2seq(PAIRS, dataclasses.replace(CONFIG, bucket=True), progress=False)
    assert model.translate(["walk twice", "look"]) == ["WALK WALK", "LOOK"]


class _Force:
    """A matcher that allows exactly one token sequence, then the end."""

    def __init__(self, ids, size):
        self.ids, self.size, self.seen = list(ids), size, 0

    def allowed(self):
        import numpy as np
        mask = np.zeros(self.size, dtype=bool)
        mask[self.ids[self.seen] if self.seen < len(self.ids) else EOS] = True
        return mask

    def advance(self, tokens):
        self.seen += len(tokens)
        return True


def test_matchers_constrain_each_output_and_none_leaves_one_free():
    model = train_seq2seq(PAIRS, CONFIG, progress=False)
    words = model.target_vocabulary
    size = len(words.words)
    forced = _Force(words.encode("RUN LOOK RUN"), size)
    outputs = model.translate(["walk", "walk"], matchers=[forced, None])
    assert outputs == ["RUN LOOK RUN", "WALK"] and forced.seen == 4   # three words and end
    with pytest.raises(ValueError, match="1 matchers for 2 sources"):
        model.translate(["walk", "run"], matchers=[None])

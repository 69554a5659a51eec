"""The Transformer sequence-to-sequence baseline."""

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
    assert first == again and all(set(out) <= set("0123456789,") for out in first)


def test_too_long_inputs_are_refused():
    model = train_seq2seq(PAIRS, Seq2SeqConfig(steps=1, dim=16, layers=1, max_length=2),
                          progress=False)
    with pytest.raises(ValueError, match="longer than the 4 positions"):
        model.translate(["walk walk walk walk walk"])

"""A model's own token list as a tokenizer for the grammar engines."""

import numpy as np
import pytest

from diagrammar.decoding.constraints.engines import compile_grammar
from diagrammar.decoding.constraints.protocol import GrammarError, GrammarSpec
from diagrammar.decoding.constraints.vocabulary import TokenVocabulary

WORDS = ["<pad>", "<bos>", "<eos>", "1", "2", "12", "+", " "]


def test_text_is_tokenized_longest_first_and_unspellable_text_is_refused():
    vocabulary = TokenVocabulary(WORDS, eos_token_id=2, special_token_ids=(0, 1))
    assert vocabulary.encode("12+2") == [5, 6, 4]
    assert vocabulary.special_token_ids == [0, 1, 2]
    with pytest.raises(ValueError, match="no token spells b'x'"):
        vocabulary("1x")
    with pytest.raises(ValueError, match="end token 9"):
        TokenVocabulary(WORDS, eos_token_id=9)


def test_llguidance_masks_a_token_list_by_the_grammar():
    vocabulary = TokenVocabulary(WORDS, eos_token_id=2, special_token_ids=(0, 1))
    grammar = compile_grammar(GrammarSpec("regex", "(1|2)+\\+2"), vocabulary, len(WORDS))
    matcher = grammar.matcher()
    allowed = lambda: [WORDS[i] for i in np.flatnonzero(matcher.allowed())]  # noqa: E731
    assert allowed() == ["1", "2", "12"]
    assert matcher.advance([5]) and allowed() == ["1", "2", "12", "+"]
    assert matcher.advance([6, 4]) and allowed() == ["<eos>"]
    with pytest.raises(GrammarError, match="smaller than its token list"):
        compile_grammar(GrammarSpec("regex", "1"), vocabulary, 3)

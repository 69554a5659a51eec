"""A tagged English word list: base forms with their parts of speech, most common use first.

>>> WORD_LIST["attack"]
(('noun', 0), ('verb', 1))
>>> len(WORD_LIST) > 250
True

Written by hand from general English usage (what a learner's dictionary lists first), not
from any data set's labels.  Each line of :data:`WORDS` is a word in its base form (a
singular noun, a verb's infinitive) and its categories, the most common use first.  A
category's *cost* is its position in the line unless a suffix ``:k`` gives it: ``:2`` is
an uncommon use, ``:3`` a rare one.  Inflected forms (``cooks``, ``meals``) are found by
:class:`~diagrammar.qnlp.tagger.PosTagger`, which also guesses words missing from the list.

The categories are ``noun``, ``verb``, ``adjective`` and ``relative_pronoun``.
"""

from __future__ import annotations

__all__ = ["CATEGORIES", "WORDS", "WORD_LIST", "parse_word_list"]

#: The part-of-speech categories of the word list.
CATEGORIES: tuple[str, ...] = ("noun", "verb", "adjective", "relative_pronoun")

WORDS = """
# relative pronouns
that relative_pronoun
which relative_pronoun
who relative_pronoun
whom relative_pronoun

# people
man noun verb:3
woman noun
person noun
people noun verb:3
child noun
family noun adjective:2
husband noun verb:3
wife noun
mother noun verb:2
father noun verb:2
friend noun verb:3
teacher noun
student noun
scientist noun
astronomer noun
archaeologist noun
artist noun
officer noun
soldier noun
sailor noun
shepherd noun verb:3
farmer noun
monk noun
chef noun
cook verb noun
programmer noun
player noun
batsman noun
batter noun verb:2
pitcher noun
audience noun
police noun verb:3
government noun
company noun
team noun verb:3
fleet noun adjective:3
doctor noun verb:3
king noun
queen noun
judge noun verb
lawyer noun
writer noun
reader noun
driver noun
worker noun
leader noun
member noun
owner noun
customer noun
engineer noun verb:2

# things, places, institutions
organization noun
church noun
school noun verb:2
building noun verb:2
house noun verb:2
room noun verb:3
island noun
river noun
port noun verb:3
star noun verb:2
air noun verb:2
water noun verb:2
fuel noun verb:2
material noun adjective:2
device noun
document noun verb:2
vehicle noun
ship noun verb:2
vessel noun
train noun verb:1
horse noun
engine noun
mammal noun
species noun
phenomenon noun
quality noun adjective:2
activity noun
election noun
festival noun
movement noun
excavation noun
time noun verb:3
run verb noun
program noun verb:2
software noun
application noun
computer noun
code noun verb:2
data noun
network noun verb:2
system noun
machine noun verb:3
meal noun
dinner noun
lunch noun verb:3
breakfast noun
sauce noun
soup noun
bread noun
cake noun verb:3
food noun
book noun verb:2
letter noun
paper noun
city noun
town noun
country noun
car noun
road noun
door noun
window noun
table noun verb:3
tree noun
animal noun
dog noun verb:3
cat noun
bird noun
fish noun verb:2
money noun
market noun verb:2
game noun
music noun
song noun
story noun
idea noun
problem noun
question noun verb:2
answer noun verb
news noun
war noun
peace noun
power noun verb:2
light noun adjective:1 verb:2
fire noun verb:1
land noun verb:2
sea noun
sky noun
world noun
home noun
office noun
hospital noun
university noun
club noun
party noun
army noun
court noun verb:3
field noun verb:2
garden noun
farm noun verb:2
factory noun
museum noun
library noun
bank noun verb:3

# verbs
prepare verb
bake verb
debug verb noun:3
have verb
use verb noun
join verb
enter verb
discover verb
carry verb
strike verb noun:1
serve verb
face noun verb:1
build verb noun:2
teach verb
submit verb
sell verb
require verb
raise verb noun:2
own verb adjective:1
offer verb noun:1
love noun verb
lose verb
hold verb noun:2
hit verb noun:1
fill verb
feature noun verb:1
establish verb
destroy verb
contain verb
attract verb
win verb noun:2
wear verb noun:3
visit verb noun:1
transport noun verb:1
take verb
support verb noun:1
study noun verb
show verb noun:1
share verb noun:1
represent verb
replace verb
remove verb
reflect verb
pull verb noun:2
publish verb
play verb noun:1
leave verb noun:2
keep verb
increase verb noun:1
include verb
haul verb noun:2
cross verb noun:2 adjective:3
control noun verb:1
attack noun verb:1
allow verb
achieve verb
help verb noun:1
hire verb noun:2
trust noun verb:1
like verb
know verb
see verb
find verb
give verb
make verb
write verb
read verb
eat verb
drink verb noun:1
buy verb
pay verb noun:2
open verb adjective:1
close verb adjective:1
watch verb noun:1
follow verb
meet verb
lead verb noun:2
create verb
produce verb noun:2
protect verb
save verb
kill verb
catch verb
throw verb
push verb
send verb
bring verb
need verb noun:1
want verb
design noun verb:1
test noun verb:1
fix verb noun:2
manage verb
develop verb
maintain verb
install verb
deliver verb
chase verb noun:2
defend verb
employ verb
invite verb
praise verb noun:2
admire verb
fear noun verb:1
hate verb
respect noun verb:1
guide noun verb:1
cover verb noun:1
reach verb

# adjectives
skillful adjective
tasty adjective
useful adjective
good adjective
bad adjective
new adjective
old adjective
young adjective
big adjective
small adjective
large adjective
happy adjective
clever adjective
fresh adjective
hot adjective
cold adjective
delicious adjective
rich adjective
poor adjective
famous adjective
beautiful adjective
strong adjective
fast adjective
slow adjective
red adjective noun:2
"""


def parse_word_list(text: str) -> dict[str, tuple[tuple[str, int], ...]]:
    """``{word: ((category, cost), ...)}`` from lines ``word category[:cost] ...``.

    Blank lines and ``#`` comments are skipped.  The categories keep the order of the line.

    Args:
        text: the word list.

    Raises:
        ValueError: a line has no category, an unknown category, a bad cost or a word that
            was already listed (the message gives the line number).

    >>> parse_word_list("run verb noun\\nfish noun verb:2")
    {'run': (('verb', 0), ('noun', 1)), 'fish': (('noun', 0), ('verb', 2))}
    """
    words: dict[str, tuple[tuple[str, int], ...]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        word, *fields = line.split()
        if not fields:
            raise ValueError(f"word list line {number}: {word!r} has no category")
        if word in words:
            raise ValueError(f"word list line {number}: {word!r} is listed twice")
        tags = []
        for position, item in enumerate(fields):
            category, _, cost = item.partition(":")
            if category not in CATEGORIES:
                raise ValueError(
                    f"word list line {number}: unknown category {category!r}; "
                    f"known: {', '.join(CATEGORIES)}"
                )
            if cost and not cost.isdigit():
                raise ValueError(f"word list line {number}: cost {cost!r} is not a number")
            tags.append((category, int(cost) if cost else position))
        words[word.lower()] = tuple(tags)
    return words


#: :data:`WORDS` parsed: ``{word: ((category, cost), ...)}``.
WORD_LIST: dict[str, tuple[tuple[str, int], ...]] = parse_word_list(WORDS)

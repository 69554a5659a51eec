"""Seeded table-QA data for Binder programs: messy tables, questions with gold Binder programs
and gold answers, and the splits of a compositional test.

Three table families, each with cells written the ways people write them, and each
:class:`Cell` keeping its clean ``value`` beside its ``text``:

- ``football``: a season's games: ``week``, ``date`` (``2023-09-07``, ``Sep 7, 2023``,
  ``7 September 2023``, ``09/07/2023``, ``7.9.2023``), ``opponent`` (``at Dallas``,
  ``@ Dallas``, ``vs. Dallas``, ``Dallas (home)``...), ``result`` (``W 24–17``,
  ``won 24-17 (OT)``, ``L 10-13``, ``lost 3–21``...), ``attendance`` (``61,512``, ``61512``,
  ``61.5k``);
- ``cities``: ``city``, ``country``, ``population`` (``2,160,000``, ``2.16M``...), ``area``
  (``105 km²``, ``105 sq km``...), ``status`` (``capital``, ``regional centre``...),
  ``coast`` (``on the coast``, ``inland``...);
- ``athletes``: a decathlon: ``rank``, ``athlete``, ``nation`` (``USA``, ``United States``,
  ``U.S.``...), ``born`` (mixed date formats), ``medal`` (``Gold``, ``gold medal``, ``G``,
  ``—``...), ``points`` (``8,512``, ``8512 pts``...).

Questions come from templates: counts of rows meeting one or two *conditions* (each a map call
and a test, e.g. ``QA('map@did they win?', result) = 'yes'``), sums and averages of a
*quantity* read by a map call, argmax/argmin over rows, an ``ans`` call over a sub-table, and
plain lookups that SQL alone answers. Gold answers are computed from the clean values.

The splits (:data:`SPLITS`) differ from ``train`` in one thing each, by exact rules
(:func:`split_of`): ``train`` has 5-10 rows, a condition set in :func:`train_combinations`
and an answer within its quantity's range (:func:`answer_limit`); ``larger-tables`` has 15-30
rows; ``held-out-combinations`` a pair of conditions never combined in train
(:data:`HELD_OUT`); ``answers-outside-range`` a numeric answer above the range.

>>> examples = generate("train", 3, seed=1)
>>> [split_of(example) for example in examples]
['train', 'train', 'train']
>>> example = generate("held-out-combinations", 1, seed=0)[0]
>>> sorted(example.question.conditions) in [sorted(pair) for pair in HELD_OUT[example.family]]
True
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

SPLITS = ("train", "larger-tables", "held-out-combinations", "answers-outside-range")
ROWS: dict[str, tuple[int, int]] = {
    "train": (5, 10), "larger-tables": (15, 30), "held-out-combinations": (5, 10),
    "answers-outside-range": (5, 10)}
"""Rows per table in each split (inclusive)."""
COUNT_LIMIT = 5
"""The largest count a train question answers."""


@dataclass(frozen=True)
class Cell:
    """A table cell: the ``text`` shown, and the clean ``value`` it stands for.

    >>> Cell("61.5k", 61500).value
    61500
    """

    text: str
    value: Any


@dataclass(frozen=True)
class GoldTable:
    """A generated table of :class:`Cell` rows, with its ``family``.

    >>> table = GoldTable("toy", ("n",), ((Cell("1,000", 1000),),))
    >>> table.texts(), table.cell("n", "1,000").value
    ((('n',), (('1,000',),)), 1000)
    """

    family: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]

    def texts(self) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
        """The column names and the cell texts: what a model (and SQL) sees."""
        return self.columns, tuple(tuple(cell.text for cell in row) for row in self.rows)

    def cell(self, column: str, text: str) -> Cell:
        """The cell of ``column`` that reads ``text`` (texts determine values in a column)."""
        position = self.columns.index(column)
        for row in self.rows:
            if row[position].text == text:
                return row[position]
        raise KeyError(f"no cell {text!r} in column {column!r}")

    def values(self, column: str) -> list[Any]:
        position = self.columns.index(column)
        return [row[position].value for row in self.rows]


@dataclass(frozen=True)
class SubQuestion:
    """A question a map call asks of each cell of ``column``; ``answer`` is the gold reply
    for a clean value. ``sql`` is what a careful SQL writer would put in its place without a
    model (a predicate for a yes/no question, else an expression, built from LIKE, REPLACE,
    CAST, SUBSTR): it reads the common ways the cells are written, not every messy one.

    >>> _WIN.question, _WIN.column, _WIN.answer({"won": True}), _WIN.sql
    ('did they win?', 'result', 'yes', "result LIKE 'W%'")
    """

    question: str
    column: str
    answer: Callable[[Any], str]
    sql: str = ""


@dataclass(frozen=True)
class Condition:
    """A row filter: the sub-question's answer compared (``op``: ``=`` or ``>=``) with
    ``target``; ``phrase`` completes "How many games ...?".

    >>> crowd = FOOTBALL.condition("crowd")
    >>> crowd.sql(), crowd.holds(70_000)
    ("QA('map@what was the attendance as a number?', attendance) >= 65000", True)
    """

    name: str
    phrase: str
    sub: SubQuestion
    op: str
    target: str | int

    def sql(self) -> str:
        target = f"'{self.target}'" if isinstance(self.target, str) else str(self.target)
        return f"{_call(self.sub)} {self.op} {target}"

    def plain_sql(self) -> str:
        """The condition in SQL alone (the sub-question's :attr:`SubQuestion.sql`)."""
        if isinstance(self.target, str):
            return f"({self.sub.sql})" if self.target == "yes" else f"NOT ({self.sub.sql})"
        return f"{self.sub.sql} {self.op} {self.target}"

    def holds(self, value: Any) -> bool:
        answer = self.sub.answer(value)
        if self.op == "=":
            return answer == self.target
        return int(answer) >= int(self.target)


@dataclass(frozen=True)
class Quantity:
    """A number read from a cell by a map call; ``sum_limit`` and ``average_limit`` bound the
    answers of train questions; a quantity that is not ``summable`` (a year) is never
    summed.

    >>> FOOTBALL.quantities[0].value({"won": True, "for": 24, "against": 17, "overtime": False})
    24
    """

    name: str
    phrase: str
    sub: SubQuestion
    sum_limit: int
    average_limit: int
    summable: bool = True

    def value(self, value: Any) -> int:
        return int(self.sub.answer(value))


@dataclass(frozen=True)
class Label:
    """What names a row in an answer: a column, and (when its cells need interpreting) the
    map sub-question that reads the name.

    >>> FOOTBALL.label.sql(), FOOTBALL.label.name({"team": "Dallas", "home": False})
    ("QA('map@what team did they play?', opponent)", 'Dallas')
    """

    noun: str
    column: str
    sub: SubQuestion | None = None

    def name(self, value: Any) -> str:
        return self.sub.answer(value) if self.sub else str(value)

    def sql(self) -> str:
        return _call(self.sub) if self.sub else self.column

    def plain_sql(self) -> str:
        return self.sub.sql if self.sub else self.column


@dataclass(frozen=True)
class Family:
    """A kind of table: its columns, a row maker, and what questions may ask of it.

    >>> sorted(FAMILIES), FOOTBALL.columns
    (['athletes', 'cities', 'football'], ('week', 'date', 'opponent', 'result', 'attendance'))
    """

    name: str
    noun: str
    columns: tuple[str, ...]
    rows: Callable[[random.Random, int], list[dict[str, Cell]]]
    conditions: tuple[Condition, ...]
    exclusive: tuple[tuple[str, str], ...]
    quantities: tuple[Quantity, ...]
    label: Label
    lookups: Callable[[GoldTable, random.Random], Question | None]

    def condition(self, name: str) -> Condition:
        return next(condition for condition in self.conditions if condition.name == name)

    def sub_questions(self) -> dict[str, SubQuestion]:
        subs = [c.sub for c in self.conditions] + [q.sub for q in self.quantities]
        subs += [self.label.sub] if self.label.sub else []
        return {sub.question: sub for sub in subs}


@dataclass(frozen=True)
class Question:
    """A question about a table: its ``text``, the gold Binder ``program``, the gold
    ``answer``, its template ``kind`` (count, sum, average, argmax, argmin, ans, lookup), the
    ``conditions`` it combines and the ``quantity`` whose range bounds its answer (None:
    not a bounded number). ``map_program`` is the gold program without ``ans`` calls (an
    ``ans`` question's argmax becomes ``ORDER BY`` a map call), ``sql_program`` the plain-SQL
    program a careful writer would use instead of model calls (see :attr:`SubQuestion.sql`).

    >>> question = generate("held-out-combinations", 1, seed=4)[0].question
    >>> question.kind in ("count", "sum", "average"), len(question.conditions)
    (True, 2)
    """

    text: str
    program: str
    answer: Any
    kind: str
    conditions: tuple[str, ...] = ()
    quantity: str | None = None
    map_program: str = ""
    sql_program: str = ""

    def __post_init__(self) -> None:
        # ``map_program``: the program with map calls only (an ans question's argmax as
        # ORDER BY a map call); ``sql_program``: plain SQL, no model calls. Both default to
        # ``program`` (a plain lookup is already both).
        for name in ("map_program", "sql_program"):
            if not getattr(self, name):
                object.__setattr__(self, name, self.program)


@dataclass(frozen=True)
class Example:
    """A table, a question about it, and the split it belongs to; its oracles answer model
    calls from the clean values.

    >>> example = generate("train", 1, seed=0)[0]
    >>> from diagrammar.symbolic.binder import Table, execute, normalize_answer
    >>> run = execute(example.question.program, Table(*example.table.texts()),
    ...               example.oracle_map(), example.oracle_answer())
    >>> run.answer == normalize_answer(example.question.answer)
    True
    """

    family: str
    table: GoldTable
    question: Question
    split: str

    def oracle_map(self) -> Callable[[str, str, str], str]:
        """A model that answers each map call from the cell's clean value."""
        subs = FAMILIES[self.family].sub_questions()

        def model(kind: str, question: str, cell: str) -> str:
            sub = subs[question]
            return sub.answer(self.table.cell(sub.column, cell).value)
        return model

    def oracle_answer(self) -> Callable[[str, Any], str]:
        """A model that answers an ans call (``which <label> has the highest/lowest
        <quantity>?``) from the clean values of the sub-table it is shown."""
        family = FAMILIES[self.family]

        def model(question: str, table: Any) -> str:
            label, quantity, highest = _ans_questions(family)[question]
            rows = [dict(zip(table.columns, row)) for row in table.rows]
            scored = [(quantity.value(self.table.cell(quantity.sub.column,
                                                      row[quantity.sub.column]).value),
                       label.name(self.table.cell(label.column, row[label.column]).value))
                      for row in rows]
            best = (max if highest else min)(scored, key=lambda pair: pair[0])
            return best[1]
        return model


# --- messy writing ------------------------------------------------------------------------


def _call(sub: SubQuestion) -> str:
    return f"QA('map@{sub.question}', {sub.column})"


def _number(rng: random.Random, value: int, unit: str = "") -> str:
    forms = [f"{value:,}", str(value)]
    if value % 100 == 0 and 1000 <= value < 1_000_000:
        forms.append(f"{value / 1000:g}k")
    if value % 10_000 == 0 and value >= 1_000_000:
        forms.append(f"{value / 1_000_000:g}M")
    text = rng.choice(forms)
    return f"{text} {unit}" if unit and rng.random() < 0.5 else text


def _date(rng: random.Random, day: datetime.date) -> str:
    return rng.choice([day.isoformat(), f"{day:%b} {day.day}, {day.year}",
                       f"{day.day} {day:%B} {day.year}", f"{day:%m/%d/%Y}",
                       f"{day.day}.{day.month}.{day.year}"])


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


# --- football -----------------------------------------------------------------------------

TEAMS = ("Dallas", "Miami", "Denver", "Chicago", "Boston", "Seattle", "Houston", "Detroit",
         "Atlanta", "Phoenix", "Buffalo", "Cleveland", "Tampa", "Oakland", "Baltimore",
         "Pittsburgh", "Green Bay", "Minnesota", "Carolina", "Tennessee", "Jacksonville",
         "Las Vegas", "Kansas City", "Cincinnati", "Indianapolis", "San Francisco",
         "Los Angeles", "New Orleans", "Philadelphia", "Washington", "Arizona", "New York")


def _football_rows(rng: random.Random, count: int) -> list[dict[str, Cell]]:
    start = datetime.date(2023, 9, 7) + datetime.timedelta(days=rng.randrange(0, 30))
    rows = []
    for week, team in enumerate(rng.sample(TEAMS, count), start=1):
        home = rng.random() < 0.5
        place = rng.choice([f"vs. {team}", f"vs {team}", f"{team} (home)"] if home
                           else [f"at {team}", f"@ {team}", f"{team} (away)"])
        scored, allowed = rng.randint(3, 45), rng.randint(3, 45)
        if scored == allowed:
            scored += 3
        won, overtime = scored > allowed, rng.random() < 0.2
        dash = rng.choice(["-", "–"])
        score = f"{scored}{dash}{allowed}"
        result = (rng.choice([f"W {score}", f"won {score}", f"W{score}"]) if won
                  else rng.choice([f"L {score}", f"lost {score}", f"L{score}"]))
        result += " (OT)" if overtime else ""
        attendance = rng.randint(400, 800) * 100 if rng.random() < 0.5 \
            else rng.randint(40_000, 80_000)
        day = start + datetime.timedelta(days=7 * (week - 1))
        rows.append({
            "week": Cell(str(week), week),
            "date": Cell(_date(rng, day), day.isoformat()),
            "opponent": Cell(place, {"team": team, "home": home}),
            "result": Cell(result, {"won": won, "for": scored, "against": allowed,
                                    "overtime": overtime}),
            "attendance": Cell(_number(rng, attendance), attendance)})
    return rows


_WIN = SubQuestion("did they win?", "result", lambda v: _yes(v["won"]), "result LIKE 'W%'")
_OVERTIME = SubQuestion("did the game go to overtime?", "result", lambda v: _yes(v["overtime"]),
                        "result LIKE '%(OT)%'")
_SCORED = SubQuestion("how many points did they score?", "result", lambda v: str(v["for"]),
                      "CAST(SUBSTR(result, INSTR(result, ' ') + 1) AS INTEGER)")
_ALLOWED = SubQuestion("how many points did the opponent score?", "result",
                       lambda v: str(v["against"]),
                       "CAST(SUBSTR(REPLACE(result, '–', '-'), "
                       "INSTR(REPLACE(result, '–', '-'), '-') + 1) AS INTEGER)")
_AWAY = SubQuestion("was it an away game?", "opponent", lambda v: _yes(not v["home"]),
                    "opponent LIKE 'at %' OR opponent LIKE '@ %' OR opponent LIKE '%(away)'")
_TEAM = SubQuestion("what team did they play?", "opponent", lambda v: v["team"],
                    "TRIM(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(opponent, 'vs. ', ''), "
                    "'at ', ''), '@ ', ''), '(home)', ''), '(away)', ''))")
_CROWD = SubQuestion("what was the attendance as a number?", "attendance", str,
                     "CAST(REPLACE(attendance, ',', '') AS INTEGER)")


def _football_lookup(table: GoldTable, rng: random.Random) -> Question | None:
    row = rng.choice(table.rows)
    week, date = row[0].value, row[1].text
    if rng.random() < 0.5:
        return Question(f"In which week was the game dated {date}?",
                        f"SELECT week FROM w WHERE date = '{date}'", week, "lookup")
    return Question(f"What does the table list as the result in week {week}?",
                    f"SELECT result FROM w WHERE week = {week}", row[3].text, "lookup")


FOOTBALL = Family(
    "football", "games", ("week", "date", "opponent", "result", "attendance"), _football_rows,
    (Condition("win", "were won", _WIN, "=", "yes"),
     Condition("loss", "were lost", _WIN, "=", "no"),
     Condition("away", "were played away", _AWAY, "=", "yes"),
     Condition("home", "were played at home", _AWAY, "=", "no"),
     Condition("overtime", "went to overtime", _OVERTIME, "=", "yes"),
     Condition("crowd", "drew at least 65,000 people", _CROWD, ">=", 65_000),
     Condition("high-scoring", "saw them score at least 28 points", _SCORED, ">=", 28)),
    (("win", "loss"), ("away", "home")),
    (Quantity("points", "points scored", _SCORED, 120, 27),
     Quantity("allowed", "points allowed", _ALLOWED, 120, 27),
     Quantity("attendance", "attendance", _CROWD, 400_000, 62_000)),
    Label("opponent", "opponent", _TEAM), _football_lookup)


# --- cities -------------------------------------------------------------------------------

CITIES = (  # (city, country, national capital, on the coast)
    ("Paris", "France", True, False), ("Lyon", "France", False, False),
    ("Marseille", "France", False, True), ("Nice", "France", False, True),
    ("Toulouse", "France", False, False), ("Bordeaux", "France", False, False),
    ("Berlin", "Germany", True, False), ("Hamburg", "Germany", False, False),
    ("Munich", "Germany", False, False), ("Cologne", "Germany", False, False),
    ("Kiel", "Germany", False, True), ("Rostock", "Germany", False, True),
    ("Rome", "Italy", True, False), ("Milan", "Italy", False, False),
    ("Naples", "Italy", False, True), ("Genoa", "Italy", False, True),
    ("Turin", "Italy", False, False), ("Bari", "Italy", False, True),
    ("Madrid", "Spain", True, False), ("Barcelona", "Spain", False, True),
    ("Valencia", "Spain", False, True), ("Seville", "Spain", False, False),
    ("Malaga", "Spain", False, True), ("Zaragoza", "Spain", False, False),
    ("Warsaw", "Poland", True, False), ("Krakow", "Poland", False, False),
    ("Gdansk", "Poland", False, True), ("Poznan", "Poland", False, False),
    ("Lisbon", "Portugal", True, True), ("Porto", "Portugal", False, True),
    ("Braga", "Portugal", False, False), ("Athens", "Greece", True, True),
    ("Patras", "Greece", False, True), ("Larissa", "Greece", False, False))


def _city_rows(rng: random.Random, count: int) -> list[dict[str, Cell]]:
    rows = []
    for city, country, capital, coastal in rng.sample(CITIES, count):
        population = rng.randint(100_000, 3_500_000)
        if rng.random() < 0.4:
            population = population // 10_000 * 10_000 or 10_000
        area = rng.randint(40, 900)
        status = rng.choice(["capital", "national capital", "Capital city"] if capital
                            else ["regional centre", "provincial", "—"])
        coast = rng.choice(["coastal", "on the coast", "yes (port)"] if coastal
                           else ["inland", "no", "not coastal"])
        rows.append({
            "city": Cell(city, city), "country": Cell(country, country),
            "population": Cell(_number(rng, population), population),
            "area": Cell(f"{area}{rng.choice([' km²', ' sq km', ' km2', ''])}", area),
            "status": Cell(status, capital), "coast": Cell(coast, coastal)})
    return rows


_CAPITAL = SubQuestion("is it a national capital?", "status", _yes, "status LIKE '%capital%'")
_COASTAL = SubQuestion("is the city on the coast?", "coast", _yes,
                       "coast LIKE '%coast%' AND coast NOT LIKE 'not%'")
_PEOPLE = SubQuestion("what is the population as a number?", "population", str,
                      "CAST(REPLACE(population, ',', '') AS INTEGER)")
_AREA = SubQuestion("what is the area in square kilometres?", "area", str,
                    "CAST(area AS INTEGER)")


def _city_lookup(table: GoldTable, rng: random.Random) -> Question | None:
    row = rng.choice(table.rows)
    city, country = row[0].value, row[1].value
    if rng.random() < 0.5:
        return Question(f"Which country is {city} in?",
                        f"SELECT country FROM w WHERE city = '{city}'", country, "lookup")
    count = sum(value == country for value in table.values("country"))
    return Question(f"How many of the cities are in {country}?",
                    f"SELECT COUNT(*) FROM w WHERE country = '{country}'", count, "lookup")


CITY = Family(
    "cities", "cities", ("city", "country", "population", "area", "status", "coast"), _city_rows,
    (Condition("capital", "are national capitals", _CAPITAL, "=", "yes"),
     Condition("coastal", "are on the coast", _COASTAL, "=", "yes"),
     Condition("inland", "are inland", _COASTAL, "=", "no"),
     Condition("big", "have at least a million people", _PEOPLE, ">=", 1_000_000),
     Condition("wide", "cover at least 300 km²", _AREA, ">=", 300)),
    (("coastal", "inland"),),
    (Quantity("population", "population", _PEOPLE, 8_000_000, 1_900_000),
     Quantity("area", "area in km²", _AREA, 2_000, 480)),
    Label("city", "city"), _city_lookup)


# --- athletes -----------------------------------------------------------------------------

FIRST = ("Ashton", "Damian", "Kevin", "Pierce", "Lindon", "Ilya", "Leo", "Maicel", "Niklas",
         "Karel", "Janek", "Trey", "Sander", "Tim", "Markus")
LAST = ("Eaton", "Warner", "Mayer", "LePage", "Victor", "Shkurenev", "Neugebauer", "Uibo",
        "Kaul", "Tilga", "Oiglane", "Hardee", "Skotheim", "Duckworth", "Rooba")
NATIONS = {  # canonical name -> the ways it is written
    "United States": ("USA", "United States", "U.S."), "Canada": ("CAN", "Canada"),
    "Germany": ("GER", "Germany"), "Estonia": ("EST", "Estonia"), "France": ("FRA", "France"),
    "Norway": ("NOR", "Norway"), "Great Britain": ("GBR", "Great Britain", "UK")}
_MEDAL_TEXT = {"gold": ("Gold", "gold medal", "G"), "silver": ("Silver", "silver medal", "S"),
               "bronze": ("Bronze", "bronze medal", "B"), None: ("—", "none")}


def _athlete_rows(rng: random.Random, count: int) -> list[dict[str, Cell]]:
    names = rng.sample([f"{first} {last}" for first in FIRST for last in LAST], count)
    points = sorted(rng.sample(range(7000, 9100), count), reverse=True)
    rows = []
    for rank, (name, score) in enumerate(zip(names, points), start=1):
        nation = rng.choice(sorted(NATIONS))
        born = datetime.date(1985, 1, 1) + datetime.timedelta(days=rng.randrange(0, 5000))
        medal = rng.choice(["gold", "silver", "bronze", None, None])
        rows.append({
            "rank": Cell(str(rank), rank), "athlete": Cell(name, name),
            "nation": Cell(rng.choice(NATIONS[nation]), nation),
            "born": Cell(_date(rng, born), born.isoformat()),
            "medal": Cell(rng.choice(_MEDAL_TEXT[medal]), medal),
            "points": Cell(_number(rng, score, "pts"), score)})
    return rows


_GOLD = SubQuestion("did the athlete win gold?", "medal", lambda v: _yes(v == "gold"),
                    "medal LIKE 'gold%'")
_MEDAL = SubQuestion("did the athlete win a medal?", "medal", lambda v: _yes(v is not None),
                     "medal NOT IN ('—', 'none')")
_AMERICAN = SubQuestion("is the athlete from the United States?", "nation",
                        lambda v: _yes(v == "United States"),
                        "nation IN ('USA', 'United States')")
_BORN = SubQuestion("in what year was the athlete born?", "born", lambda v: v[:4],
                    "CAST(SUBSTR(born, -4) AS INTEGER)")
_POINTS = SubQuestion("how many points did the athlete score?", "points", str,
                      "CAST(REPLACE(points, ',', '') AS INTEGER)")


def _athlete_lookup(table: GoldTable, rng: random.Random) -> Question | None:
    row = rng.choice(table.rows)
    if rng.random() < 0.5:
        return Question(f"Who finished in place {row[0].value}?",
                        f"SELECT athlete FROM w WHERE rank = {row[0].value}", row[1].value,
                        "lookup")
    return Question("How many athletes are listed?", "SELECT COUNT(*) FROM w",
                    len(table.rows), "lookup")


ATHLETES = Family(
    "athletes", "athletes", ("rank", "athlete", "nation", "born", "medal", "points"),
    _athlete_rows,
    (Condition("gold", "won gold", _GOLD, "=", "yes"),
     Condition("medalist", "won a medal", _MEDAL, "=", "yes"),
     Condition("no-medal", "won no medal", _MEDAL, "=", "no"),
     Condition("american", "are from the United States", _AMERICAN, "=", "yes"),
     Condition("young", "were born in 1995 or later", _BORN, ">=", 1995),
     Condition("strong", "scored at least 8,500 points", _POINTS, ">=", 8500)),
    (("medalist", "no-medal"), ("gold", "no-medal")),
    (Quantity("points", "points", _POINTS, 50_000, 8_200),
     Quantity("birth-year", "birth year", _BORN, 0, 1_992, summable=False)),
    Label("athlete", "athlete"), _athlete_lookup)


FAMILIES: dict[str, Family] = {family.name: family for family in (FOOTBALL, CITY, ATHLETES)}

HELD_OUT: dict[str, tuple[tuple[str, str], ...]] = {
    "football": (("win", "away"), ("loss", "home"), ("overtime", "crowd")),
    "cities": (("capital", "coastal"), ("big", "inland")),
    "athletes": (("gold", "american"), ("young", "strong"))}
"""Pairs of conditions that train never combines (each condition alone, and in other
pairs, is in train)."""


def pairs(family: str) -> list[tuple[str, str]]:
    """The pairs of conditions of a family that can hold together, in a fixed order.

    >>> ("win", "loss") in pairs("football"), ("win", "away") in pairs("football")
    (False, True)
    """
    spec = FAMILIES[family]
    exclusive = {frozenset(pair) for pair in spec.exclusive}
    return [(a.name, b.name) for a, b in combinations(spec.conditions, 2)
            if frozenset((a.name, b.name)) not in exclusive]


def train_combinations(family: str) -> set[frozenset[str]]:
    """Condition sets train questions may use: none, each condition alone, and every pair
    that can hold together except the held-out ones.

    >>> combinations = train_combinations("cities")
    >>> frozenset({"big"}) in combinations, frozenset({"big", "inland"}) in combinations
    (True, False)
    """
    held = {frozenset(pair) for pair in HELD_OUT[family]}
    singles = {frozenset((c.name,)) for c in FAMILIES[family].conditions}
    return {frozenset()} | singles | ({frozenset(pair) for pair in pairs(family)} - held)


def answer_limit(example: Example) -> int | None:
    """The largest answer a train question of this template may have (None: unbounded, as
    for names and plain lookups).

    >>> [answer_limit(e) for e in generate("train", 40, seed=0)
    ...  if e.question.kind == "count"][:2]
    [5, 5]
    """
    question = example.question
    if question.kind == "count":
        return COUNT_LIMIT
    if question.kind in ("sum", "average"):
        quantity = next(q for q in FAMILIES[example.family].quantities
                        if q.name == question.quantity)
        return quantity.sum_limit if question.kind == "sum" else quantity.average_limit
    return None


def split_of(example: Example) -> str | None:
    """The split an example belongs to by the rules (None: none of them).

    - ``train``: 5-10 rows, conditions in :func:`train_combinations`, answer within range;
    - ``larger-tables``: as train but 15-30 rows;
    - ``held-out-combinations``: as train but a :data:`HELD_OUT` pair of conditions;
    - ``answers-outside-range``: as train but a numeric answer above :func:`answer_limit`.

    >>> import dataclasses
    >>> example = generate("train", 1, seed=0)[0]
    >>> split_of(dataclasses.replace(example, table=dataclasses.replace(
    ...     example.table, rows=example.table.rows * 3)))
    'larger-tables'
    """
    rows = len(example.table.rows)
    combination = frozenset(example.question.conditions)
    limit = answer_limit(example)
    within = limit is None or example.question.answer <= limit
    seen = combination in train_combinations(example.family)
    held = combination in {frozenset(pair) for pair in HELD_OUT[example.family]}
    small = ROWS["train"][0] <= rows <= ROWS["train"][1]
    large = ROWS["larger-tables"][0] <= rows <= ROWS["larger-tables"][1]
    if small and seen and within:
        return "train"
    if large and seen and within:
        return "larger-tables"
    if small and held and within:
        return "held-out-combinations"
    if small and seen and not within:
        return "answers-outside-range"
    return None


# --- questions ----------------------------------------------------------------------------


def _ans_questions(family: Family) -> dict[str, tuple[Label, Quantity, bool]]:
    return {f"which {family.label.noun} has the {'highest' if high else 'lowest'} "
            f"{quantity.phrase}?": (family.label, quantity, high)
            for quantity in family.quantities for high in (True, False)}


def _where(conditions: Sequence[Condition]) -> str:
    return f" WHERE {' AND '.join(c.sql() for c in conditions)}" if conditions else ""


def _plain_where(conditions: Sequence[Condition]) -> str:
    return f" WHERE {' AND '.join(c.plain_sql() for c in conditions)}" if conditions else ""


def _among(family: Family, conditions: Sequence[Condition]) -> str:
    if not conditions:
        return f"all {family.noun}"
    return f"the {family.noun} that {' and '.join(c.phrase for c in conditions)}"


def make_question(family: Family, table: GoldTable, kind: str,
                  conditions: Sequence[Condition], rng: random.Random) -> Question | None:
    """A question of template ``kind`` about ``table`` combining ``conditions``, with its gold
    program and answer; None where the template does not fit (no row matches, a tie).

    >>> rng = random.Random(0)
    >>> table = generate_table("football", 6, rng)
    >>> question = make_question(FOOTBALL, table, "count", [FOOTBALL.condition("win")], rng)
    >>> question.text, question.program
    ('How many games were won?', "SELECT COUNT(*) FROM w WHERE QA('map@did they win?', \
result) = 'yes'")
    """
    if kind == "lookup":
        return family.lookups(table, rng)
    names = tuple(sorted(c.name for c in conditions))
    rows = [dict(zip(table.columns, (cell.value for cell in row))) for row in table.rows]
    matched = [row for row in rows if all(c.holds(row[c.sub.column]) for c in conditions)]
    where = _where(conditions)
    plain = _plain_where(conditions)
    if kind == "count":
        return Question(f"How many {family.noun} {' and '.join(c.phrase for c in conditions)}?",
                        f"SELECT COUNT(*) FROM w{where}", len(matched), kind, names,
                        sql_program=f"SELECT COUNT(*) FROM w{plain}")
    if not matched:
        return None
    quantity = rng.choice([q for q in family.quantities if q.summable or kind != "sum"])
    values = [quantity.value(row[quantity.sub.column]) for row in matched]
    if kind in ("sum", "average"):
        function, word = ("SUM", "total") if kind == "sum" else ("AVG", "average")
        answer = sum(values) if kind == "sum" else sum(values) / len(values)
        return Question(f"What is the {word} {quantity.phrase} of {_among(family, conditions)}?",
                        f"SELECT {function}({_call(quantity.sub)}) FROM w{where}",
                        answer, kind, names, quantity.name,
                        sql_program=f"SELECT {function}({quantity.sub.sql}) FROM w{plain}")
    highest = kind == "argmax" or (kind == "ans" and rng.random() < 0.5)
    best = max(values) if highest else min(values)
    if values.count(best) != 1:
        return None
    winner = family.label.name(matched[values.index(best)][family.label.column])
    word = "highest" if highest else "lowest"
    order = "DESC" if highest else "ASC"
    ordered = (f"SELECT {family.label.sql()} FROM w{where} "
               f"ORDER BY {_call(quantity.sub)} {order} LIMIT 1")
    plain_ordered = (f"SELECT {family.label.plain_sql()} FROM w{plain} "
                     f"ORDER BY {quantity.sub.sql} {order} LIMIT 1")
    if kind == "ans":
        question = f"which {family.label.noun} has the {word} {quantity.phrase}?"
        return Question(f"Among {_among(family, conditions)}, {question}",
                        f"SELECT QA('ans@{question}', {family.label.column}, "
                        f"{quantity.sub.column}) FROM w{where}", winner, kind, names,
                        map_program=ordered, sql_program=plain_ordered)
    return Question(f"Which {family.label.noun} had the {word} {quantity.phrase} among "
                    f"{_among(family, conditions)}?", ordered, winner, kind, names,
                    sql_program=plain_ordered)


KINDS = ("count", "sum", "average", "argmax", "argmin", "ans", "lookup")
_MAX_CONDITIONS = {"count": 2, "sum": 2, "average": 2, "argmax": 1, "argmin": 1, "ans": 1,
                   "lookup": 0}


def generate_table(family: str, rows: int, rng: random.Random) -> GoldTable:
    """A table of ``family`` with ``rows`` rows drawn with ``rng``.

    >>> table = generate_table("cities", 3, random.Random(1))
    >>> len(table.rows), table.columns[:3]
    (3, ('city', 'country', 'population'))
    """
    spec = FAMILIES[family]
    drawn = spec.rows(rng, rows)
    return GoldTable(family, spec.columns,
                     tuple(tuple(row[column] for column in spec.columns) for row in drawn))


def generate(split: str, count: int, seed: int = 0) -> list[Example]:
    """``count`` examples of ``split``, the same for the same seed. Each is drawn (family,
    size, template, conditions) and kept only where :func:`split_of` puts it in ``split``.

    >>> [len(generate(split, 4, seed=3)) for split in SPLITS]
    [4, 4, 4, 4]
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; the splits are {', '.join(SPLITS)}")
    rng = random.Random(f"binder-tables/{split}/{seed}")
    low, high = ROWS[split]
    # only counts, sums and averages combine two conditions or have a bounded answer
    kinds = KINDS if split in ("train", "larger-tables") else ("count", "sum", "average")
    examples: list[Example] = []
    for _ in range(count * 400):
        if len(examples) == count:
            return examples
        family = FAMILIES[rng.choice(sorted(FAMILIES))]
        kind = rng.choice(kinds)
        if split == "held-out-combinations":
            names: Sequence[str] = rng.choice(HELD_OUT[family.name])
        else:
            options = sorted(sorted(c) for c in train_combinations(family.name)
                              if len(c) <= _MAX_CONDITIONS[kind]
                              and (kind != "count" or c))
            names = rng.choice(options)
        table = generate_table(family.name, rng.randint(low, high), rng)
        question = make_question(family, table, kind, [family.condition(n) for n in names], rng)
        if question is None:
            continue
        example = Example(family.name, table, question, split)
        if split_of(example) == split:
            examples.append(example)
    if len(examples) == count:
        return examples
    raise RuntimeError(f"could not draw {count} examples of {split}; got {len(examples)}")


def splits(count: int = 100, seed: int = 0) -> dict[str, list[Example]]:
    """Every split with ``count`` examples each.

    >>> {split: len(examples) for split, examples in splits(2).items()}
    {'train': 2, 'larger-tables': 2, 'held-out-combinations': 2, 'answers-outside-range': 2}
    """
    return {split: generate(split, count, seed) for split in SPLITS}


__all__ = ["ATHLETES", "CITY", "COUNT_LIMIT", "Cell", "Condition", "Example", "FAMILIES",
           "FOOTBALL", "Family", "GoldTable", "HELD_OUT", "KINDS", "Label", "Quantity",
           "Question", "ROWS", "SPLITS", "SubQuestion", "answer_limit", "generate",
           "generate_table", "make_question", "pairs", "split_of", "splits",
           "train_combinations"]

"""Irregular verbs: "went" is "go", "bought" is "buy", "won" is "win".

A question asks in the base form ("When did Nate win his third tourney?", "What did Maria
buy?") where the person told it in the past ("I won my third tournament!", "I bought a new
car"). Porter stemming folds regular verbs ("started" and "start") but not these, so the
question's word and the teller's share nothing. Coverage therefore counts a question's word as
said where any form of its verb was (``other_forms``; ``memory.recall.coverage``). BM25 is
left to the words as asked: searching every form there too measured no better on LoCoMo's dev
dialogues (``bench/README.md``), and a common past form ("went", "felt") matches much.

Only common verbs whose forms mean little else are listed: "bit" (a bit), "shot" (a shot),
"rose" (a flower), "lay", "ground", "wound", "bore", "dove" are left out, and so are forms
spelt as their base ("read", "put", "cut").
"""

from __future__ import annotations

__all__ = ["other_forms"]

# Base form, then its past and past participle where they differ from it and from each other.
_VERBS = """
arise arose arisen
awake awoke awoken
become became
begin began begun
bend bent
bleed bled
blow blew blown
break broke broken
breed bred
bring brought
build built
burn burnt
buy bought
catch caught
choose chose chosen
come came
creep crept
deal dealt
dig dug
draw drew drawn
dream dreamt
drink drank drunk
drive drove driven
eat ate eaten
fall fell fallen
feed fed
feel felt
fight fought
find found
flee fled
fly flew flown
forget forgot forgotten
forgive forgave forgiven
freeze froze frozen
get got gotten
give gave given
go went gone
grow grew grown
hang hung
hear heard
hide hid hidden
hold held
keep kept
know knew known
lead led
learn learnt
leave left
lend lent
light lit
lose lost
make made
mean meant
meet met
overcome overcame
pay paid
rebuild rebuilt
ride rode ridden
ring rang rung
rise risen
run ran
say said
see saw seen
seek sought
sell sold
send sent
shake shook shaken
shine shone
show shown
sing sang sung
sink sank sunk
sit sat
sleep slept
slide slid
speak spoke spoken
spend spent
spin spun
stand stood
steal stole stolen
stick stuck
strike struck
swear swore sworn
sweep swept
swim swam swum
take took taken
teach taught
tear tore torn
tell told
think thought
throw threw thrown
understand understood
wake woke woken
wear wore worn
weave wove woven
weep wept
win won
withdraw withdrew withdrawn
write wrote written
"""


def _forms() -> dict[str, tuple[str, ...]]:
    forms: dict[str, tuple[str, ...]] = {}
    for line in _VERBS.split("\n"):
        verb = line.split()
        for form in verb:
            forms[form] = tuple(other for other in verb if other != form)
    return forms


_FORMS = _forms()


def other_forms(word: str) -> tuple[str, ...]:
    """The other forms of ``word``'s verb if it is an irregular one ("win" -> "won";
    "went" -> "go", "gone"); none otherwise. ``word`` is lowercase."""
    return _FORMS.get(word, ())

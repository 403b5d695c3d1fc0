"""Knowledge-base retrieval: BM25 ranking over an agent's entries, and the threshold for unrelated questions."""

from __future__ import annotations

from voice.agent_config import KnowledgeEntry, knowledge_entries
from voice.knowledge import KnowledgeBase, format_results, stem, tokenize

ENTRIES = (
    KnowledgeEntry("Opening hours", "We are open Monday to Friday from 9 am to 5 pm. We are closed on weekends."),
    KnowledgeEntry("Parking", "Free parking is available in the garage behind the building."),
    KnowledgeEntry("Refunds", "Refunds are issued within 14 days of purchase with a receipt."),
    KnowledgeEntry("Address", "Our office is at 12 Harbour Street, Springfield."),
)


def test_tokenize_lowercases_drops_stopwords_and_stems() -> None:
    assert tokenize("What are your Opening HOURS?") == ["open", "hour"]
    assert tokenize("Where's the parking garage") == ["park", "garage"]
    assert tokenize("the and of to") == []
    assert [stem(w) for w in ("refunds", "policies", "boxes", "issued", "class")] == [
        "refund",
        "policy",
        "box",
        "issu",
        "class",
    ]


def test_ranking_puts_the_matching_entry_first() -> None:
    kb = KnowledgeBase(ENTRIES)
    assert kb.search("What are your opening hours?")[0][0].title == "Opening hours"
    assert kb.search("Is there somewhere to park my car?")[0][0].title == "Parking"
    assert kb.search("how do I get a refund")[0][0].title == "Refunds"
    assert kb.best("what's your address") == ENTRIES[3]
    results = kb.search("are you open on weekends", k=4)
    scores = [score for _, score in results]
    assert results[0][0].title == "Opening hours" and scores == sorted(scores, reverse=True)


def test_unrelated_questions_return_nothing() -> None:
    kb = KnowledgeBase(ENTRIES)
    assert kb.search("What's the weather like on Mars?") == []
    assert kb.search("hello there") == []  # stop words only
    assert kb.search("") == []
    assert kb.best("Can you sing me a song") is None
    assert KnowledgeBase([]).search("opening hours") == []


def test_incidental_word_matches_fall_below_the_coverage_threshold() -> None:
    kb = KnowledgeBase(ENTRIES)
    assert kb.search("what's the weather forecast for the building site tomorrow") == []  # 1 of 5 words
    assert kb.search("is there parking near the building")[0][0].title == "Parking"
    # A one-entry base still answers (plain BM25 score floors fail there: IDF is tiny).
    single = KnowledgeBase([KnowledgeEntry("Hours", "We are open 9 to 5 on weekdays.")])
    assert single.best("when are you open") is not None and single.best("do you sell bikes") is None


def test_threshold_is_configurable_and_search_is_deterministic() -> None:
    kb = KnowledgeBase(ENTRIES)
    weak = kb.search("building", k=4)
    assert weak and weak[0][0].title == "Parking"
    strict = KnowledgeBase(ENTRIES, min_score=weak[0][1] + 0.01)
    assert strict.search("building") == []
    assert KnowledgeBase(ENTRIES, min_coverage=0.9).search("parking near the moon") == []
    assert [kb.search("refund receipt days") for _ in range(3)] == [kb.search("refund receipt days")] * 3
    twins = KnowledgeBase([KnowledgeEntry("A", "Pets are welcome."), KnowledgeEntry("B", "Pets are welcome.")])
    assert [e.title for e, _ in twins.search("pets", k=2)] == ["A", "B"]  # ties: the earlier entry first


def test_entries_from_the_agent_row_and_formatting() -> None:
    raw = [{"title": "Hours", "content": " Open 9 to 5. "}, {"title": "empty", "content": ""}, "junk", {"content": "x"}]
    assert knowledge_entries(raw) == (KnowledgeEntry("Hours", "Open 9 to 5."), KnowledgeEntry("", "x"))
    kb = KnowledgeBase(ENTRIES)
    assert format_results(kb.search("parking")).startswith("Parking: Free parking")
    assert format_results([]) == "No matching entry in the knowledge base."

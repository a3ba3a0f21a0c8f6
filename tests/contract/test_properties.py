"""Property tests: any legal id and any text round-trips and stays isolated."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionstore import SessionStore

ids = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    min_size=1,
    max_size=256,
)
texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=2000)
FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@FAST
@given(session_id=ids, user_id=st.none() | ids, text=texts)
async def test_any_id_and_text_round_trip(
    store: SessionStore, session_id: str, user_id: str | None, text: str
) -> None:
    qa_id = await store.create_qa_entry(session_id, user_id, text, text[::-1], text)
    entry = await store.get_qa_entry(session_id, user_id, qa_id)
    assert entry is not None
    assert (entry.session_id, entry.user_id) == (session_id, user_id)
    assert (entry.question, entry.answer, entry.context) == (text, text[::-1], text)
    assert await store.latest_qa_id(session_id, user_id) == qa_id
    listed = {
        (i.session_id, i.user_id) for i in (await store.list_sessions(user_id, limit=1000)).items
    }
    assert (session_id, user_id) in listed
    assert await store.delete_session(session_id, user_id)


@FAST
@given(first=ids, second=ids)
async def test_distinct_ids_never_share_data(store: SessionStore, first: str, second: str) -> None:
    if first == second:
        return
    tag = uuid.uuid4().hex
    await store.create_qa_entry(first, second, tag, "a")
    await store.create_qa_entry(second, first, "other", "a")
    assert await store.get_all_qa_entries(second, second) == []
    assert await store.get_all_qa_entries(first, first) == []
    assert [e.question for e in await store.get_all_qa_entries(first, second)] == [tag]
    await store.delete_session(first, second)
    await store.delete_session(second, first)

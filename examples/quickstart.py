"""Record a short conversation in the default store and print it back.

Run it with ``make demo`` or ``python examples/quickstart.py``. With no URL the
store is ``SESSIONSTORE_URL`` or a SQLite file in your data directory.
"""

import asyncio

from sessionstore import SessionQAUpdate, SessionTraceStep, open_store

TURNS = [
    ("What is retrieval-augmented generation?", "Answering with documents fetched at run time."),
    ("Why not fine-tune instead?", "Retrieval keeps facts current without retraining."),
    ("What should I store per turn?", "The question, the answer and the context you used."),
]


async def main() -> None:
    async with open_store() as store:
        print(f"store: {store.describe()}\n")
        await store.delete_session("quickstart", "demo-user")  # start clean on every run
        ids = [
            await store.create_qa_entry("quickstart", "demo-user", q, a, context="docs/rag.md")
            for q, a in TURNS
        ]
        await store.update_qa_entry(
            "quickstart",
            "demo-user",
            ids[-1],
            SessionQAUpdate(feedback_score=5, feedback_text="clear and short"),
        )
        await store.save_trace_step(
            "quickstart",
            "demo-user",
            SessionTraceStep(
                origin_function="search_docs",
                status="success",
                method_params={"query": "RAG storage"},
                method_return_value=["docs/rag.md"],
                session_feedback="search_docs succeeded.",
            ),
        )
        for entry in await store.get_latest_qa_entries("quickstart", "demo-user", 10):
            stars = f"  [feedback {entry.feedback_score}/5]" if entry.feedback_score else ""
            print(f"Q: {entry.question}\nA: {entry.answer}{stars}\n")
        for step in await store.read_trace_steps("quickstart", "demo-user"):
            print(f"trace: {step.origin_function} -> {step.status} ({step.session_feedback})")
        page = await store.list_sessions("demo-user")
        print(f"\nsessions of demo-user: {[(i.session_id, i.qa_count) for i in page.items]}")


if __name__ == "__main__":
    asyncio.run(main())

"""Ingest messages coalesce when the UI falls behind (Textual's ``can_replace``): a burst of
batches is handled as one refresh with the newest total, and no count is lost."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Static

from tui.messages import EventsIngested, LoadProgressed


class Sink(Static):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[EventsIngested] = []
        self.progress: list[LoadProgressed] = []

    def on_events_ingested(self, msg: EventsIngested) -> None:
        self.seen.append(msg)

    def on_load_progressed(self, msg: LoadProgressed) -> None:
        self.progress.append(msg)


class Burst(App[None]):
    def compose(self) -> ComposeResult:
        yield Sink()


async def test_a_burst_of_ingests_is_handled_as_the_newest() -> None:
    app = Burst()
    async with app.run_test() as pilot:
        sink = app.query_one(Sink)
        for i in range(1, 201):  # a live run's batches, faster than the pump handles them
            sink.post_message(EventsIngested(total=10 * i, new=10, loading=i < 200))
        for i in range(1, 201):
            sink.post_message(LoadProgressed(done=i, total=200))
        await pilot.pause(0.2)
        assert len(sink.seen) < 200
        assert sink.seen[-1].total == 2000 and sink.seen[-1].loading is False
        assert sum(m.new for m in sink.seen) == 2000  # replaced batches' counts kept
        assert sink.progress[-1].done == 200 and len(sink.progress) < 200

"""The shared Slack budget on Slack's own clock: minutes of streaming answers simulated in
milliseconds, checked against the tier Slack enforces over any sliding minute."""

from __future__ import annotations

from bot.slack.budget import Priority, SlackBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def most_in_a_minute(times: list[float]) -> int:
    times = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 60:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_four_streaming_answers_stay_within_tier_3_and_finals_always_get_through() -> None:
    clock = Clock()
    budget = SlackBudget(clock=clock, sleep=clock.sleep)
    granted: list[float] = []
    finals = 0
    # Four workers, each asking for a progress update every 1.2 s (what the issue measured:
    # 200 chat.update calls a minute), and a final answer every 20 s, for ten minutes.
    for tick in range(int(600 / 1.2)):
        clock.now = 1000.0 + tick * 1.2
        for _worker in range(4):
            if budget.take("chat.update", priority=Priority.PROGRESS):
                granted.append(clock.now)
        if tick % 17 == 0:
            before = clock.now
            assert budget.take("chat.update", priority=Priority.FINAL, wait_s=60)
            granted.append(clock.now)
            finals += 1
            clock.now = max(clock.now, before)
    assert finals > 25
    assert most_in_a_minute(granted) <= 50  # Slack's Tier 3 for chat.update


def test_progress_never_waits_and_leaves_a_reserve_for_final_answers() -> None:
    clock = Clock()
    budget = SlackBudget(clock=clock, sleep=clock.sleep)
    taken = 0
    while budget.take("chat.update", priority=Priority.PROGRESS):
        taken += 1
    assert clock.now == 1000.0  # it never slept
    assert budget.take("chat.update", priority=Priority.FINAL)  # the reserve
    assert 0 < taken < 10


def test_a_429_pauses_the_method_for_everyone_until_retry_after() -> None:
    clock = Clock()
    budget = SlackBudget(clock=clock, sleep=clock.sleep)
    budget.rate_limited("chat.update", 30)
    assert not budget.take("chat.update", priority=Priority.PROGRESS)
    assert not budget.take("chat.update", priority=Priority.FINAL, wait_s=10)
    started = clock.now
    assert budget.take("chat.update", priority=Priority.FINAL, wait_s=60)
    assert clock.now - started >= 20  # waited out the rest of the 30 s
    assert budget.take("views.publish", priority=Priority.NOTICE)  # other methods unaffected


def test_a_replicas_share_scales_its_allowance() -> None:
    clock = Clock()
    halves = [SlackBudget(0.5, clock=clock, sleep=clock.sleep) for _ in range(2)]
    granted: list[float] = []
    for tick in range(600):
        clock.now = 1000.0 + tick * 0.5
        for budget in halves:
            if budget.take("chat.update", priority=Priority.NOTICE):
                granted.append(clock.now)
    assert most_in_a_minute(granted) <= 50  # two replicas together, one workspace


def test_chat_post_message_is_budgeted_per_channel() -> None:
    clock = Clock()
    budget = SlackBudget(clock=clock, sleep=clock.sleep)
    in_one = sum(
        budget.take("chat.postMessage", channel="C1", priority=Priority.PROGRESS) for _ in range(10)
    )
    assert in_one <= 2  # about one a second per channel, a small burst
    assert budget.take("chat.postMessage", channel="C2", priority=Priority.NOTICE)

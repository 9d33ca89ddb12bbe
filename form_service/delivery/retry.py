"""When to try a failed delivery again: exponential backoff with full jitter, then give up.

Full jitter (a random delay between zero and the exponential bound) spreads a backlog's
retries out, so a relay that comes back is not hit by every queued message at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    cap_seconds: float = 15 * 60.0
    max_attempts: int = 12
    """After this many failed attempts the row is dead and the intake team is alerted."""
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the *attempts*-th failed attempt (1 for the first)."""
        exponent = min(max(attempts - 1, 0), 60)  # past 60 the cap has long been reached
        bound = min(self.cap_seconds, self.base_seconds * 2**exponent)
        return self.rng.uniform(0, bound)

    def gives_up(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

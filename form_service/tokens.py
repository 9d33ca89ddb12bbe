"""The form token: proof that a report comes from a form this service handed out.

The token signs a random id and the time the form was served. It is refused when forged,
older than the limit, or sent back faster than a person could fill the form. Single use
is not checked here but in the database (reports.token_id is unique), so a double submit
finds the first report instead of racing it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

_SALT = "report-form"


class TokenProblem(StrEnum):
    missing = "missing"
    forged = "forged"
    expired = "expired"
    too_fast = "too_fast"


@dataclass(frozen=True)
class TokenCheck:
    token_id: str | None
    problem: TokenProblem | None


class _ClockSigner(TimestampSigner):
    def __init__(self, *args: Any, clock: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        # Whole seconds, as itsdangerous stores them; the injectable clock lets tests age tokens.
        return int(self._clock())


class FormTokens:
    def __init__(
        self,
        keys: Sequence[str],
        min_fill_seconds: float,
        max_age_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # itsdangerous signs with the last key and verifies with all of them.
        self._serializer = URLSafeTimedSerializer(
            list(reversed(keys)), salt=_SALT, signer=_ClockSigner, signer_kwargs={"clock": clock}
        )
        self._clock = clock
        self._min_fill = min_fill_seconds
        self._max_age = max_age_seconds

    def issue(self) -> str:
        return self._serializer.dumps(uuid.uuid4().hex)

    def check(self, token: str | None) -> TokenCheck:
        if not token:
            return TokenCheck(None, TokenProblem.missing)
        try:
            token_id, signed_at = self._serializer.loads(
                token, max_age=self._max_age, return_timestamp=True
            )
        except SignatureExpired:
            return TokenCheck(None, TokenProblem.expired)
        except BadSignature:
            return TokenCheck(None, TokenProblem.forged)
        if not isinstance(token_id, str) or len(token_id) != 32:
            return TokenCheck(None, TokenProblem.forged)
        # The stamp has whole-second precision, so a form is "too fast" until the
        # whole minimum has certainly passed.
        if self._clock() - signed_at.timestamp() < self._min_fill:
            return TokenCheck(token_id, TokenProblem.too_fast)
        return TokenCheck(token_id, None)

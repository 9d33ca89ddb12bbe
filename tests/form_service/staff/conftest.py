from tests.form_service.staff.support import code_clock, quick_sign_in  # noqa: F401

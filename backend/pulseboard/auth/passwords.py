"""What makes a password too weak to accept; each rule gives the reason a user is shown."""

MIN_LENGTH = 10
# A few of the most used passwords that still pass the length rule.
COMMON = frozenset(
    {
        "password123",
        "password1234",
        "1234567890",
        "qwertyuiop",
        "iloveyou123",
        "123456789a",
        "passw0rd123",
        "administrator",
        "qwerty12345",
        "letmein123",
        "welcome123",
        "abc1234567",
        "1q2w3e4r5t",
        "football123",
        "princess123",
    }
)


def weakness(password: str, email: str) -> str | None:
    if len(password) < MIN_LENGTH:
        return f"The password must be at least {MIN_LENGTH} characters long"
    if password.strip() != password:
        return "The password must not start or end with whitespace"
    if len(set(password)) < 4:
        return "The password must use at least 4 different characters"
    if password.lower() in COMMON:
        return "The password is too common"
    name = email.split("@")[0].lower()
    if len(name) >= 3 and name in password.lower():
        return "The password must not contain the email address"
    return None

from runbook.secrets import Scrubber, redact_url, secrets_in_env


def test_url_password_is_masked():
    url = "postgresql+psycopg2://nerava_admin:S3cr3t-pw@db.example.com:5432/nerava"
    assert redact_url(url) == "postgresql+psycopg2://nerava_admin:***@db.example.com:5432/nerava"
    assert redact_url("redis://cache:6379/0") == "redis://cache:6379/0"


def test_scrubber_masks_secrets_anywhere_in_nested_data():
    env = {"DATABASE_URL": "postgres://u:hunter22@h/db", "REDIS_AUTH_TOKEN": "tok-123456", "PORT": "8000"}
    found = secrets_in_env(env)
    assert found == {"hunter22", "tok-123456"}
    scrub = Scrubber(found)
    data = {"a": ["password is hunter22", {"t": "tok-123456"}], "port": 8000}
    assert scrub.data(data) == {"a": ["password is ***", {"t": "***"}], "port": 8000}


def test_only_secret_like_names_are_masked():
    env = {"AUTH_PROVIDER": "aws", "TOKEN_URL": "https://id.example.com", "DB_PASSWORD": "pw-123456", "GITHUB_TOKEN": "ghp_abcdef"}
    assert secrets_in_env(env) == {"pw-123456", "ghp_abcdef"}

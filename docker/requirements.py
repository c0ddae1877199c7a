"""The pinned requirements of settings.ini, one a line: `python requirements.py settings.ini [--without NAME ...]`.

The image installs these; tests/docker/run.sh collects their wheels on the host (`--without torch` when the host has no
local torch wheel). Standard library only: it runs before anything is installed."""
import configparser, re, shlex, sys


def name(req: str) -> str:
    "The normalised project name of a requirement such as `pyarrow==25.0.1`."
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req).group(1)).lower()


def requirements(settings: str, without: list[str] = ()) -> list[str]:
    "settings.ini's `requirements`, less those named in `without`."
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(settings, encoding="utf-8")
    drop = {name(n) for n in without}
    return [r for r in shlex.split(cfg["DEFAULT"].get("requirements", "")) if name(r) not in drop]


if __name__ == "__main__":
    settings, *rest = sys.argv[1:]
    print("\n".join(requirements(settings, rest[1:] if rest[:1] == ["--without"] else [])))

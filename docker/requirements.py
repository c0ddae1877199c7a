"""The pinned requirements of settings.ini, one a line, with overrides: `python requirements.py settings.ini [REQ ...]`.

Each extra REQ is added; when it names a package settings.ini pins, it replaces that pin (the image installs
MLflow this way until the project's own pins hold it). Standard library only: it runs before anything is installed."""
import configparser, re, shlex, sys


def name(req: str) -> str:
    "The normalised project name of a requirement such as `pyarrow==25.0.1`."
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req).group(1)).lower()


def requirements(settings: str, extra: list[str]) -> list[str]:
    "settings.ini's `requirements`, each replaced by the extra requirement of the same name, then the other extras."
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(settings, encoding="utf-8")
    pinned, over = shlex.split(cfg["DEFAULT"].get("requirements", "")), {name(r): r for r in extra}
    return [over.pop(name(r), r) for r in pinned] + list(over.values())


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1], sys.argv[2:])))

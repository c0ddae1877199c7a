"""The forge's workflows (issue 22, item 3): CI runs `.ci/run` on pushes and pull requests with a pip cache; deploy builds
and ships to Fly.io on tags with the repository's token. Parsed as YAML, not run: they run on GitHub only."""
import yaml

from lstm_forecast.testing import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


def load(name):
    "The workflow `name` as YAML 1.1 reads it, its `on:` key (read as True) restored."
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    if True in doc: doc["on"] = doc.pop(True)
    return doc


def steps(doc):
    "Every step of every job of `doc`."
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def test_ci_runs_the_ci_script_on_pushes_and_pull_requests():
    ci = load("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    runs = [s["run"].strip() for s in steps(ci) if "run" in s]
    assert "bash .ci/run" in runs, f"no step runs exactly `bash .ci/run`: {runs}"
    assert (ROOT / ".ci" / "run").exists()


def test_ci_caches_pip_downloads_keyed_on_the_pins():
    cached = [s for s in steps(load("ci.yml")) if s.get("uses", "").startswith("actions/cache@")
              and "~/.cache/pip" in s["with"]["path"]]
    setup = [s for s in steps(load("ci.yml")) if s.get("uses", "").startswith("actions/setup-python@")
             and s.get("with", {}).get("cache") == "pip"]
    assert cached or setup, "no step caches pip's downloads"
    assert all("settings.ini" in s["with"]["key"] for s in cached)


def test_ci_provides_the_shared_folder_or_says_it_is_missing():
    shared = [s for s in steps(load("ci.yml")) if "SHARED_DATA_URL" in s.get("run", "")]
    assert shared and shared[0]["env"]["SHARED_DATA_URL"] == "${{ vars.SHARED_DATA_URL }}"
    assert "exit 1" in shared[0]["run"] and "../shared" in shared[0]["run"]


def test_deploy_ships_to_fly_on_tags_with_the_secret_token():
    deploy = load("deploy.yml")
    assert set(deploy["on"]) == {"push"} and deploy["on"]["push"]["tags"] == ["v*"]
    assert any(s.get("uses", "").startswith("superfly/flyctl-actions/setup-flyctl@") for s in steps(deploy))
    ship = [s for s in steps(deploy) if "flyctl deploy" in s.get("run", "")]
    assert ship and "--remote-only" in ship[0]["run"]
    assert ship[0]["env"]["FLY_API_TOKEN"] == "${{ secrets.FLY_API_TOKEN }}"
    assert (ROOT / "Dockerfile").exists() and (ROOT / "fly.toml").exists()

"""``drimbox psc-sim`` as a real process: prints its issuer, serves, stops cleanly on SIGTERM."""

import json
import signal
import subprocess
import sys

import pytest
import requests

pytestmark = pytest.mark.integration
RUN_CLI = "import sys; from drimbox.cli import main; sys.exit(main())"


def test_psc_sim_command(tmp_path):
    professionals = tmp_path / "pros.json"
    professionals.write_text(json.dumps([{"idNat": "810009999991", "given_name": "Ana", "family_name": "LOPEZ",
                                          "exercices": [{"codeProfession": "10", "activities": []}]}]))
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_CLI, "psc-sim", "--port", "0", "--professionals", str(professionals)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("PSC simulator issuer: http://127.0.0.1:"), line + process.stderr.read()
        issuer = line.split(": ", 1)[1].strip()
        discovery = requests.get(issuer + "/.well-known/wallet-openid-configuration", timeout=5).json()
        assert discovery["issuer"] == issuer
        listed = requests.get(issuer + "/sim/professionals", timeout=5).json()
        assert [p["idNat"] for p in listed] == ["810009999991"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert list(tmp_path.iterdir()) == [professionals]  # nothing written to the working directory


def test_psc_sim_command_reports_bad_input(tmp_path):
    bad = tmp_path / "pros.json"
    bad.write_text(json.dumps([{"idNat": ""}]))
    result = subprocess.run([sys.executable, "-c", RUN_CLI, "psc-sim", "--port", "0", "--professionals", str(bad)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "has no idNat" in result.stderr

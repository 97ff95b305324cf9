import logging
import os

import pytest

from i2crc_core.infra.errors import DatasetError
from i2crc_core.runner import jobs_import_from, run_stage


def test_output_and_logs_go_to_the_log_file(tmp_path):
    def stage(value):
        print("printed", value)
        logging.getLogger("i2crc.test").info("logged %s", value)
        return value * 2

    log = tmp_path / "logs" / "stage.log"
    assert run_stage(log, stage, value=21) == 42
    text = log.read_text()
    assert "printed 21" in text and "logged 21" in text and "done in" in text


def test_user_error_exits_non_zero_with_one_line(tmp_path, capfd):
    def stage():
        raise DatasetError("data/x.png: label file is missing")

    log = tmp_path / "stage.log"
    with pytest.raises(SystemExit) as raised:
        run_stage(log, stage)
    assert raised.value.code == 1
    assert "data/x.png: label file is missing" in log.read_text()
    assert "Traceback" not in log.read_text()


def test_bugs_keep_their_traceback(tmp_path):
    def stage():
        raise ZeroDivisionError("bug")

    with pytest.raises(ZeroDivisionError):
        run_stage(tmp_path / "stage.log", stage)
    text = (tmp_path / "stage.log").read_text()
    assert "Traceback (most recent call last)" in text and "ZeroDivisionError: bug" in text


def test_jobs_import_the_package_from_the_workflow_folder_first(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    jobs_import_from(tmp_path)
    assert os.environ["PYTHONPATH"] == f"{tmp_path}{os.pathsep}/elsewhere"
    monkeypatch.delenv("PYTHONPATH")
    jobs_import_from(tmp_path)
    assert os.environ["PYTHONPATH"] == str(tmp_path)

"""`python -m wideseek_rl.export`: a checkpoint becomes a model directory holding exactly the
weights the run had at that step (the last one: the run's `final/`)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from wideseek_rl.config import PRESETS
from wideseek_rl.export import export_checkpoint, main
from wideseek_rl.train import train


def test_an_exported_checkpoint_is_the_model_of_its_step(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = replace(PRESETS["toy"][1], steps=2, save_every=1, keep_checkpoints=5, progress=False,
                     torch_threads=1, tensorboard=False, output_dir=tmp_path / "run")
    config = replace(config, rollout=replace(config.rollout, tasks_per_step=1, group_size=2))
    train(config)
    ckpts = sorted((tmp_path / "run" / "checkpoints").glob("step_*"))
    assert len(ckpts) == 2
    final = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "final").state_dict()
    first, last = (AutoModelForCausalLM.from_pretrained(export_checkpoint(c, tmp_path / c.name))
                   .state_dict() for c in ckpts)
    assert final.keys() == last.keys()
    assert all(torch.equal(final[k], last[k]) for k in final)  # the last step is final/
    assert any(not torch.equal(first[k], last[k]) for k in final)  # step 1 is not
    tok = AutoTokenizer.from_pretrained(tmp_path / ckpts[0].name)
    assert tok.chat_template and tok.encode("hello")


def test_what_is_not_a_checkpoint_is_one_error_line(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "model.safetensors: not found" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
    (tmp_path / "a" / "b" / "ck").mkdir(parents=True)
    (tmp_path / "a" / "b" / "ck" / "model.safetensors").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"config\.json: not found"):
        export_checkpoint(tmp_path / "a" / "b" / "ck", tmp_path / "out")

"""The llmasos command line, run as a real subprocess."""
import json
import os
import subprocess
import sys

import pytest


def llmasos(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "llmasos", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_run_generates(smollm2_gguf):
    r = llmasos("run", "The world is", "--max-tokens", "8", "--model", smollm2_gguf)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("The world is") and len(r.stdout) > len("The world is") + 2


def test_run_chat_json(smollm2_gguf):
    r = llmasos("run", "Describe a cat as a JSON object with name, age and color.", "--chat", "--json",
                "--max-tokens", "200", "--model", smollm2_gguf)
    assert r.returncode == 0, r.stderr
    assert isinstance(json.loads(r.stdout), dict)


def test_run_json_schema(smollm2_gguf, tmp_path):
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    path = tmp_path / "cat.json"
    path.write_text(json.dumps(schema))
    r = llmasos("run", "A cat as JSON:", "--json-schema", str(path), "--max-tokens", "60", "--model", smollm2_gguf)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout[len("A cat as JSON:"):])
    assert list(out) == ["name", "age"] and isinstance(out["name"], str) and isinstance(out["age"], int)
    path.write_text(json.dumps({"type": "object", "properties": {"name": {"type": "string", "format": "idn-email"}}}))
    r = llmasos("run", "hi", "--json-schema", str(path), "--model", smollm2_gguf)
    assert r.returncode == 1 and "format" in r.stderr
    path.write_text("{not json")
    r = llmasos("run", "hi", "--json-schema", str(path), "--model", smollm2_gguf)
    assert r.returncode == 1 and "not JSON" in r.stderr


def test_run_grammar_file(smollm2_gguf, tmp_path):
    path = tmp_path / "answer.gbnf"
    path.write_text('root ::= ("yes" | "no") "."\n')
    r = llmasos("run", "Is the sky blue? ", "--grammar-file", str(path), "--model", smollm2_gguf)
    assert r.returncode == 0, r.stderr
    assert r.stdout[len("Is the sky blue? "):] in ("yes.\n", "no.\n")
    path.write_text('root ::= answer\n')
    r = llmasos("run", "hi", "--grammar-file", str(path), "--model", smollm2_gguf)
    assert r.returncode == 1 and "rule 'answer' is used but not defined" in r.stderr


def test_models_lists_default(smollm2_gguf):
    r = llmasos("models")
    assert r.returncode == 0
    assert "smollm2-135m-instruct" in r.stdout and "cached" in r.stdout


def test_unknown_model_is_clear_error():
    r = llmasos("run", "hi", "--model", "gpt-3")
    assert r.returncode == 1
    assert "unknown model 'gpt-3'" in r.stderr and "smollm2-135m-instruct" in r.stderr


@pytest.mark.parametrize("args", [["run", "hi", "--max-tokens", "0"], ["run", "hi", "--temperature", "-1"]])
def test_bad_flags_rejected(args):
    r = llmasos(*args)
    assert r.returncode == 2 and "error" in r.stderr


def test_force_isa_unknown_or_unsupported_is_clear_error():
    from llmasos import _core
    r = llmasos("info", env={"LLMASOS_FORCE_ISA": "bogus"})
    assert r.returncode != 0 and r.returncode > 0  # an error exit, not a signal
    assert "LLMASOS_FORCE_ISA=bogus" in r.stderr
    for isa in _core.compiled_isas():
        r = llmasos("info", env={"LLMASOS_FORCE_ISA": isa})
        if isa in _core.supported_isas():
            assert r.returncode == 0 and f'"isa": "{isa}"' in r.stdout
        else:
            assert r.returncode > 0 and "does not support" in r.stderr

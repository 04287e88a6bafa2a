import json

from test_datasets import F_FIRE, make_dfire, make_fasdd, make_plain_dfire, write_jpeg, write_text

from modules import cli
from modules.data import datasets as ds


def run(capsys, *argv):
    code = cli.main(["check-data", *argv])
    return code, capsys.readouterr().out


def test_dfire_folder_accounting_as_json(tmp_path, capsys):
    make_dfire(tmp_path)
    make_plain_dfire(tmp_path, "test", 4)
    code, out = run(capsys, "--dataset", "dfire", "--dir", str(tmp_path), "--json")
    assert code == 0
    splits = json.loads(out)["splits"]
    assert splits["train"]["kept"] == {"none": 2, "smoke": 1, "fire": 2, "both": 1}
    skipped = {(row["reason"], row["file"]) for row in splits["train"]["skipped"]}
    truncated = str(tmp_path / "train" / "images" / "truncated.jpg")
    assert len(skipped) == 12 and (ds.TRUNCATED_IMAGE, truncated) in skipped
    assert splits["test"] == {
        "kept": {"none": 1, "smoke": 1, "fire": 1, "both": 1},
        "skipped": [],
        "notes": {},
    }


def test_empty_split_is_an_error_naming_the_folder(tmp_path, capsys):
    make_plain_dfire(tmp_path, "train", 4)
    (tmp_path / "test" / "images").mkdir(parents=True)
    (tmp_path / "test" / "labels").mkdir()
    code, out = run(capsys, "--dataset", "dfire", "--dir", str(tmp_path))
    assert code == 1
    assert f"error: {tmp_path / 'test' / 'images'} holds no images" in out
    assert "D-Fire train: 4 images kept, 0 skipped" in out


def test_fasdd_text_lists_every_skipped_file(tmp_path, capsys):
    make_fasdd(tmp_path, "CV")
    code, out = run(capsys, "--dataset", "fasdd_cv", "--dir", str(tmp_path))
    assert code == 0 and "== train" in out and "== val" in out and "== test" in out
    assert ds.KEYWORD_DISAGREES in out and str(tmp_path / "images" / "fire_CV006.jpg") in out
    assert "images/fire_CV010.jpg" in out  # a listed file that is missing
    assert "FASDD_CV unlisted: 0 images kept, 0 skipped" in out


def test_fasdd_files_in_no_list_are_named(tmp_path, capsys):
    make_fasdd(tmp_path, "CV")
    write_jpeg(tmp_path / "images" / "fire_CV011.JPG")
    labels = tmp_path / "annotations" / "YOLO_CV" / "labels"
    write_text(labels / "fire_CV012.txt", F_FIRE)
    write_text(labels / "notes.md", "")
    code, out = run(capsys, "--dataset", "fasdd_cv", "--dir", str(tmp_path), "--json")
    unlisted = {(r["reason"], r["file"]) for r in json.loads(out)["splits"]["unlisted"]["skipped"]}
    assert unlisted == {
        (ds.IN_NO_LIST, str(tmp_path / "images" / "fire_CV011.JPG")),
        (ds.LABEL_WITHOUT_IMAGE, str(labels / "fire_CV012.txt")),
        (ds.NOT_A_LABEL, str(labels / "notes.md")),
    }


def test_folder_without_splits_is_named(tmp_path, capsys):
    code, out = run(capsys, "--dataset", "dfire", "--dir", str(tmp_path / "nowhere"))
    assert code == 2 and str(tmp_path / "nowhere") in out

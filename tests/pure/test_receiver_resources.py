"""The demo receiver's in-memory REST resources, over real HTTP on 127.0.0.1."""

import requests

from engine.receiver import Receiver, RestResources


def serve():
    return Receiver(policy=RestResources())


def test_create_answers_a_new_id_and_location():
    with serve() as server:
        url = f"{server.url}/resources/contacts"
        first = requests.post(url, json={"name": "Ann"}, timeout=5)
        second = requests.post(url, json={"name": "Bob"}, timeout=5)
    assert first.status_code == 201
    assert first.json() == {"name": "Ann", "id": "con_1001"}
    assert first.headers["Location"] == "/resources/contacts/con_1001"
    assert second.json()["id"] == "con_1002"


def test_patch_merges_put_replaces_get_reads():
    with serve() as server:
        url = f"{server.url}/resources/contacts"
        new_id = requests.post(url, json={"name": "Ann", "email": "a@x.io"}, timeout=5).json()["id"]
        patched = requests.patch(f"{url}/{new_id}", json={"name": "Anna"}, timeout=5)
        assert patched.json() == {"name": "Anna", "email": "a@x.io", "id": new_id}
        replaced = requests.put(f"{url}/{new_id}", json={"name": "A."}, timeout=5)
        assert replaced.json() == {"name": "A.", "id": new_id}
        assert requests.get(f"{url}/{new_id}", timeout=5).json() == {"name": "A.", "id": new_id}
        assert requests.get(url, timeout=5).json() == [{"name": "A.", "id": new_id}]


def test_delete_then_unknown_ids_answer_404():
    with serve() as server:
        url = f"{server.url}/resources/contacts"
        new_id = requests.post(url, json={"name": "Ann"}, timeout=5).json()["id"]
        deleted = requests.delete(f"{url}/{new_id}", timeout=5)
        assert (deleted.status_code, deleted.content) == (204, b"")
        assert requests.delete(f"{url}/{new_id}", timeout=5).status_code == 404
        assert requests.patch(f"{url}/{new_id}", json={}, timeout=5).status_code == 404
        assert requests.put(f"{url}/nope", json={}, timeout=5).status_code == 404


def test_bad_requests_and_other_paths():
    with serve() as server:
        url = f"{server.url}/resources/contacts"
        assert requests.post(url, data=b"[1]", timeout=5).status_code == 400
        assert requests.patch(url, json={}, timeout=5).status_code == 405
        assert requests.post(f"{url}/a/b", json={}, timeout=5).status_code == 404
        # outside the resources, the receiver answers as a webhook receiver does
        hook = requests.post(f"{server.url}/hooks/contacts", json={"type": "x"}, timeout=5)
        assert hook.status_code == 200
        assert [r.status for r in server.received] == [400, 405, 404, 200]

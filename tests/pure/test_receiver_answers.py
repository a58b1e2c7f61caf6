"""The receiver tells who asks when it has answered a request (``on_answer``)."""

import threading

import requests

from engine.receiver import Receiver, Reply


def test_on_answer_is_called_once_the_answer_is_written():
    answered = []
    done = threading.Event()

    def on_answer(request):
        answered.append((request.path, request.status, request.json))
        if len(answered) == 2:
            done.set()

    with Receiver(on_answer=on_answer) as server:
        server.script(Reply(503))
        first = requests.post(f"{server.url}/hook", json={"n": 1}, timeout=5)
        second = requests.post(f"{server.url}/hook", json={"n": 2}, timeout=5)
        assert done.wait(5)
    assert (first.status_code, second.status_code) == (503, 200)
    assert answered == [("/hook", 503, {"n": 1}), ("/hook", 200, {"n": 2})]

"""kmock's KubernetesEmulator on a loopback port, for the kubernetes backend's tests and bench.

Not used in production: it stands in for an API server, which cannot run on this machine.
"""

import asyncio
import json
import threading

import httpx
import kmock


class Emulator:
    """kmock's KubernetesEmulator served over HTTP on loopback from a thread of its own.

    It stores objects and applies create/patch/delete like an API server, but runs no
    controllers: `mark_ready` plays the Deployment controller's part by setting `status`.
    """

    def __init__(self):
        self.kmock = kmock
        started = threading.Event()

        async def serve():
            async with kmock.KubernetesEmulator() as emu, kmock.Server(emu) as server:
                self.emu, self.url = emu, str(server.url).rstrip("/")
                self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
                started.set()
                await self.stop.wait()

        self.thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
        self.thread.start()
        if not started.wait(10):
            raise RuntimeError("the Kubernetes emulator did not start")
        self.http = httpx.Client(base_url=self.url)

    def close(self):
        self.http.close()
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(5)

    def get(self, plural: str, namespace: str, name: str, group="apps", version="v1"):
        prefix = "/api/v1" if group == "" else f"/apis/{group}/{version}"
        response = self.http.get(f"{prefix}/namespaces/{namespace}/{plural}/{name}")
        return response.json() if response.status_code == 200 else None

    def mark_ready(self, namespace: str, name: str) -> None:
        """What the Deployment controller would report once the pods pass readiness."""
        obj = self.get("deployments", namespace, name)
        if obj is None:
            return
        replicas = obj["spec"].get("replicas", 0)
        status = {"replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas}
        self.http.patch(
            f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status",
            content=json.dumps({"status": status}),
            headers={"Content-Type": "application/merge-patch+json"},
        ).raise_for_status()

    def requests(self):
        return list(self.emu)

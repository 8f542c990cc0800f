"""The Tasks API's read side: list and show tasks, and an image's tasks (2.12).

`/v2/tasks*` needs `tasks_api_access` (admin by default) on top of `get_task(s)`; an image's
tasks need only `get_image`, as in Glance. Non-admins see their own project's tasks only.
"""

from __future__ import annotations

from dataclasses import dataclass

from glimpse.config import Settings
from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.repositories.tasks import TaskRepository
from glimpse.db.tables import Task
from glimpse.domain import policy
from glimpse.domain.errors import InvalidInput, MethodNotAllowed, NotFound
from glimpse.domain.listing import SortDir, parse_limit
from glimpse.domain.tasks import TASK_SORT_KEYS, TaskStatus
from glimpse.services.access import authorized_image

FILTERS = ("type", "status")


@dataclass(frozen=True, slots=True)
class TaskPage:
    tasks: list[Task]
    next_marker: str | None


class TaskNotFound(NotFound):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"Task with identifier {task_id} not found")


class TaskService:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.db = database

    @staticmethod
    def _sees(ctx: RequestContext, task: Task) -> bool:
        return ctx.is_admin or (task.owner is not None and task.owner == ctx.project_id)

    async def get(self, ctx: RequestContext, task_id: str) -> Task:
        policy.enforce(ctx, "tasks_api_access")
        policy.enforce(ctx, "get_task")
        async with self.db.read() as session:
            task = await TaskRepository(session).get(task_id)
        if task is None or not self._sees(ctx, task):
            raise TaskNotFound(task_id)
        return task

    async def delete(self, ctx: RequestContext, task_id: str) -> None:
        """Never allowed (tasks expire on their own), but only the Tasks API's users may learn
        that: the others get tasks_api_access's 403, as in Glance."""
        policy.enforce(ctx, "tasks_api_access")
        raise MethodNotAllowed(
            f"Task {task_id} cannot be deleted: tasks are removed by themselves once they "
            "expire (expires_at).",
            allow="GET",
        )

    async def list_tasks(self, ctx: RequestContext, params: dict[str, str]) -> TaskPage:
        policy.enforce(ctx, "tasks_api_access")
        policy.enforce(ctx, "get_tasks")
        filters = {name: params[name] for name in FILTERS if name in params}
        if "status" in filters and filters["status"] not in set(TaskStatus):
            raise InvalidInput(f"Invalid status value: {filters['status']}")
        sort_key = params.get("sort_key", "created_at")
        if sort_key not in TASK_SORT_KEYS:
            raise InvalidInput(f"Invalid sort_key value: {sort_key}")
        try:
            sort_dir = SortDir(params.get("sort_dir", "desc"))
        except ValueError:
            raise InvalidInput(f"Invalid sort direction: {params['sort_dir']}") from None
        limit = parse_limit(
            params.get("limit"), self.settings.limit_param_default, self.settings.api_limit_max
        )
        async with self.db.read() as session:
            repo = TaskRepository(session)
            marker = None
            if "marker" in params:
                marker = await repo.get(params["marker"])
                if marker is None or not self._sees(ctx, marker):
                    raise InvalidInput(f"Invalid marker. Task {params['marker']} not found.")
            tasks = await repo.page(
                owner=ctx.project_id,
                all_projects=ctx.is_admin,
                filters=filters,
                sort_key=sort_key,
                sort_dir=sort_dir,
                limit=limit,
                marker=marker,
            )
        next_marker = tasks[-1].id if tasks and len(tasks) == limit else None
        return TaskPage(tasks, next_marker)

    async def for_image(self, ctx: RequestContext, image_id: str) -> list[Task]:
        """The image's tasks the caller may see: as in Glance, a task is its project's (and
        admins'), so a project that sees a public or shared image sees none of the owner's."""
        async with self.db.read() as session:
            await authorized_image(ImageRepository(session), ctx, image_id, "get_image")
            tasks = await TaskRepository(session).for_image(image_id)
        return [task for task in tasks if self._sees(ctx, task)]

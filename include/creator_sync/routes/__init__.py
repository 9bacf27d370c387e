"""Where the project's own endpoints are: the view's mount point, the webhook receiver's paths, the Insider
error-callback URL and its token, and the link to a run's report. A bottom-floor module group (it imports
only the settings), so the sender, the sync and the views all read these facts from one owner."""

URL_PREFIX = "/creator-sync-ui"  # where the plugin mounts the view, under the Airflow base path

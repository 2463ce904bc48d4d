"""experiments: models, tasks, training, sweeps, the job runner, the store, analysis and CLI.

Built on mucore; never imports streamlit (the dashboard in app/ imports us, not the reverse).
"""

"""Shared page widgets: plotly charts, tables, the spec form, the model picker, small components and the search-progress view."""

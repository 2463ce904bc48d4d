"""The Export page's sections: the bundle downloads."""

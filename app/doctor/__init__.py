"""The Doctor page's sections: the findings panel and the evidence charts."""

"""The Transfer page's sections: the regret view and the depth-ladder views and charts."""

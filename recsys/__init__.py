"""recsys: a steerable music recommender you can see into.

Importable without Streamlit or torch: the torch-based model families load lazily.
"""

__version__ = "0.1.0"

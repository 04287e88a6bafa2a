"""Datasets (D-Fire, FASDD, the generated demo set) with skip accounting, YOLO labels,
preprocessing.
"""

"""Looking inside a trained model, from a weights snapshot (engine/snapshot.py), returning numpy: latent traversals,
interpolation between two codes, encoding an image file of the user's, and writing frames as a PNG grid or a GIF."""

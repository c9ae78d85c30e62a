"""The 2-D Lab tab: a Gaussian mixture and a VAE on 2-D points you can see and draw."""

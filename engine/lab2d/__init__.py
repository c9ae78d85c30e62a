"""The 2-D Lab's engine: 2-D point sets, a Gaussian mixture fitted by EM, a VAE on points, and the run that steps both."""

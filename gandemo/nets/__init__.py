"""Pure torch.nn.Modules, one file per GAN family.

Checkpoint cards name them as `gandemo.nets.<file>:<Class>`."""

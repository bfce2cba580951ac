"""MEV measured on alpsim's contracts (docs/mev.md): a searcher on a devnet's public mempool against plain and hidden orders, what a hidden request still leaks, and the keeper as the adversary."""

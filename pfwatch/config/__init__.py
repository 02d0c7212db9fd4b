"""The configuration model: parsed main.cf, master.cf and tables, expansion, diff."""

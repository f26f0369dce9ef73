"""One small file per language, and what the index must find in it (tests/repoindex)."""

from __future__ import annotations

FIXTURES = {
    "python": (
        "app/models.py",
        b'''import os
from .base import Model


class User(Model):
    """A person who can log in."""

    def save(self):
        return persist(self)


def persist(obj):
    return os.path.join("a", "b")
''',
    ),
    "javascript": (
        "web/cart.js",
        b"""import { price } from "./price.js";

export class Cart {
  add(item) {
    return price(item);
  }
}

function total(items) {
  return items.length;
}
""",
    ),
    "typescript": (
        "src/api.ts",
        b"""import { Client } from "./client";

export interface Options {
  retries: number;
}

export type Handler = (input: string) => void;

export function connect(options: Options): Client {
  return new Client(options);
}

enum Mode { Fast, Slow }
""",
    ),
    "go": (
        "cmd/server.go",
        b"""package main

import "net/http"

type Server struct {
	addr string
}

func (s *Server) Start() error {
	return http.ListenAndServe(s.addr, nil)
}

func main() {
	s := Server{addr: ":8080"}
	s.Start()
}
""",
    ),
    "rust": (
        "src/lib.rs",
        b"""use std::collections::HashMap;

pub struct Cache {
    items: HashMap<String, String>,
}

impl Cache {
    pub fn get(&self, key: &str) -> Option<&String> {
        self.items.get(key)
    }
}

pub trait Store {
    fn put(&mut self, key: String);
}

const LIMIT: usize = 10;
""",
    ),
    "java": (
        "src/Main.java",
        b"""import java.util.List;

public class Main {
    public static void main(String[] args) {
        run(List.of());
    }

    static void run(List<String> items) {
    }
}

interface Job {
    void execute();
}
""",
    ),
    "c": (
        "src/util.c",
        b"""#include <stdio.h>
#include "util.h"

#define MAX 10

struct point {
    int x;
};

int add(int a, int b) {
    return a + b;
}

void show(void) {
    printf("%d", add(1, 2));
}
""",
    ),
    "cpp": (
        "src/shape.cpp",
        b"""#include "shape.h"

namespace geo {

class Shape {
public:
    double area() const;
};

double Shape::area() const {
    return compute(1.0);
}

}
""",
    ),
    "ruby": (
        "lib/store.rb",
        b"""require "json"
require_relative "base"

module Shop
  class Store
    def add(item)
      save(item)
    end
  end
end
""",
    ),
}
